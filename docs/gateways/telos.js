// Asks telos (/v1/forward-auth) before an MCP request reaches the server.
// The request body (the JSON-RPC message) goes with the question; telos
// answers 200 to allow or 403 with a JSON-RPC error to deny.
function authorize(r) {
    var body = r.requestText || '';
    r.subrequest('/_telos', {method: 'POST', body: body})
        .then(function (reply) {
            if (reply.status === 200) {
                r.internalRedirect('@mcp');
                return;
            }
            ['X-Telos-Decision', 'X-Telos-Reason', 'X-Telos-Reasons', 'X-Telos-Workflow']
                .forEach(function (h) {
                    if (reply.headersOut[h] !== undefined) {
                        r.headersOut[h] = reply.headersOut[h];
                    }
                });
            if (reply.status === 403 || reply.status === 400) {
                r.headersOut['Content-Type'] = 'application/json';
                r.return(reply.status, reply.responseText);
            } else {
                // telos failed or refused the proxy's credential: closed.
                r.return(502, 'the authorization service answered ' + reply.status + '\n');
            }
        })
        .catch(function (e) {
            r.error('telos: ' + e);
            r.return(502, 'the authorization service could not be asked\n');
        });
}

export default {authorize};
