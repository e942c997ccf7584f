//! `JsonBody<T>`: the JSON extractor of every handler. It requires a JSON
//! content type, respects the body-size limit (413), rejects bodies nested
//! deeper than the configured depth before parsing them, and names the
//! offending field of a body that does not fit `T` (400).

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// A parsed JSON body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Maximum nesting of arrays and objects in `bytes`, strings skipped.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Checks and parses a JSON body (shared by [`JsonBody`] and handlers that
/// take raw bytes).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_json", "the body is empty"));
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body is not valid UTF-8",
        ));
    }
    let depth = json_depth(bytes);
    if depth > max_depth {
        return Err(ApiError::bad_request(
            "json_too_deep",
            format!("the body nests {depth} levels deep, the limit is {max_depth}"),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." || path.is_empty() {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid field `{path}`: {inner}")
        };
        ApiError::bad_request("invalid_json", message)
    })
}

/// Whether the request declares a JSON body.
pub fn is_json(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::bad_request(
                "unsupported_media_type",
                "send the body as `Content-Type: application/json`",
            ));
        }
        let app = AppState::from_ref(state);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge {
                    code: "body_too_large",
                    message: format!(
                        "the body is larger than {} bytes (the limit is set with --max-body-bytes)",
                        app.limits.max_body_bytes
                    ),
                }
            } else {
                ApiError::bad_request("invalid_body", e.body_text())
            }
        })?;
        parse_json(&bytes, app.limits.max_json_depth).map(JsonBody)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": "[[[\"{"}]}"#), 3);
        assert_eq!(json_depth(b"1"), 0);
    }

    #[test]
    fn names_the_offending_field() {
        #[derive(serde::Deserialize, Debug)]
        #[expect(dead_code, reason = "only deserialized")]
        struct T {
            a: Inner,
        }
        #[derive(serde::Deserialize, Debug)]
        #[expect(dead_code, reason = "only deserialized")]
        struct Inner {
            n: u32,
        }
        let err = parse_json::<T>(br#"{"a": {"n": "x"}}"#, 8).unwrap_err();
        assert!(err.to_string().contains("`a.n`"), "{err}");
        assert_eq!(
            parse_json::<T>(b"[[[[1]]]]", 2).unwrap_err().code(),
            "json_too_deep"
        );
        assert_eq!(
            parse_json::<T>(b"  ", 2).unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            parse_json::<T>(&[0xff, 0xfe], 2).unwrap_err().code(),
            "invalid_json"
        );
    }
}
