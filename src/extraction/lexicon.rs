//! Every word list extraction reads, in one place, grouped by the pipeline
//! step that reads it, each with the reason it exists. A list is a closed
//! class of function words or a small set of nouns named by the annotation
//! guide (`fixtures/ANNOTATION.md`).
//!
//! The lists the base text module needs to find shaped values (the nouns
//! of a record, identifier markers, units) live with it in [`crate::text`];
//! the two the span passes also read are re-exported here. The same word
//! in two lists ("ticket" names a record and a source of data) is two
//! meanings, not a duplicate.

use crate::intent::EntityLabel;

pub use crate::text::{ID_MARKERS, RECORD_NOUNS};

// Segmenting a request into clauses.

/// Words whose trailing period does not end a sentence ("Dr. Patel").
pub const ABBREVIATIONS: &[&str] = &[
    "dr", "mr", "mrs", "ms", "st", "jr", "sr", "prof", "inc", "ltd", "co", "vs", "etc", "e.g",
    "i.e", "approx", "no", "mt", "ave", "corp", "dept", "fig", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

/// Words after which a second action verb starts a new clause ("book it and email Ana").
pub const CONNECTORS: &[&str] = &[
    "and", ",", "&", "+", "plus", "also", "then", "and also", "and then", "or",
];

// Decoding the model's spans.

/// Determiners and possessives an entity span never starts with: "the 22nd" is `22nd`.
pub const DETERMINERS: &[&str] = &[
    "the", "a", "an", "my", "our", "your", "his", "her", "their", "its",
];

/// Prepositions a date span never starts with: "by next Thursday" is `next Thursday` ("in" is handled apart).
pub const TIME_PREPOSITIONS: &[&str] = &[
    "on",
    "by",
    "before",
    "after",
    "until",
    "till",
    "since",
    "from",
    "at",
    "during",
    "starting",
    "beginning",
];

// Which verbs are requested actions.

/// Verbs whose base form ends like a participle ("need", "bring"), so they stay actions.
pub const BASE_FORMS: &[&str] = &[
    "need", "feed", "shred", "embed", "seed", "speed", "proceed", "succeed", "exceed", "bring",
    "ring", "sing",
];

/// Words after "and"/"," before a pronoun that are no requested action: linking words, auxiliaries, "tell me".
pub const NOT_ACTIONS: &[&str] = &[
    "if", "when", "whether", "so", "then", "but", "because", "since", "while", "before", "after",
    "until", "unless", "once", "where", "what", "who", "how", "why", "which", "is", "was", "are",
    "were", "do", "does", "did", "can", "could", "will", "would", "should", "has", "have", "had",
    "let", "tell", "show", "help", "thank", "thanks", "give",
];

/// Words that, right before an action verb, say the user does not want it done ("don't book").
pub const NEGATORS: &[&str] = &["not", "don't", "dont", "don’t", "never"];

// Span passes: boundaries the annotation guide fixes.

/// Words a span never ends with: prepositions and articles the model ran on into ("the 22nd in"), "folks".
pub const TRAILING_WORDS: &[&str] = &[
    "in", "on", "at", "for", "to", "of", "with", "and", "or", "the", "a", "an", "folks", "guys",
    "people",
];

/// Particles that are an ACTION only with their verb ("warm it up"): alone they are dropped.
pub const PARTICLES: &[&str] = &[
    "up", "out", "off", "down", "over", "back", "in", "on", "away",
];

/// Words that name a unit or a moment of time without fixing one ("what time"): no date.
pub const GENERIC_TIME_WORDS: &[&str] = &[
    "time", "times", "day", "days", "date", "dates", "hour", "hours", "week", "month", "year",
    "moment", "period", "slot", "of", "the", "a",
];

/// Words that are a date by themselves ("today", "tomorrow").
pub const DEICTIC_DATES: &[&str] = &["today", "tonight", "tomorrow", "tmrw", "yesterday"];

/// Parts of a day that join a deictic date before them ("tomorrow morning").
pub const PARTS_OF_DAY: &[&str] = &["morning", "afternoon", "evening", "night"];

/// Days of the week, which can be named in the possessive ("Monday's sync").
pub const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Last words that make a person-tagged name an organisation's ("Holloway Lettings", "Acme Corp").
pub const ORG_SUFFIXES: &[&str] = &[
    "inc",
    "inc.",
    "ltd",
    "ltd.",
    "llc",
    "corp",
    "corp.",
    "gmbh",
    "plc",
    "co",
    "co.",
    "lettings",
    "capital",
    "bank",
    "partners",
    "holdings",
    "group",
    "labs",
    "studio",
    "studios",
    "design",
    "consulting",
    "solutions",
    "systems",
    "technologies",
    "properties",
    "realty",
    "insurance",
    "energy",
    "airlines",
    "motors",
    "foods",
    "logistics",
    "ventures",
    "associates",
];

/// Words that join the two ends of a date range ("the 3rd to the 5th").
pub const RANGE_JOINS: &[&str] = &[" to ", " until ", " till ", " through ", " thru "];

/// Words that make "X to Y" one clock time ("quarter to five"), not a range.
pub const CLOCK_WORDS: &[&str] = &["quarter", "half", "five", "ten", "twenty", "twenty-five"];

/// Nouns that name the kind of the entity before them, with that kind ("Invoices folder").
pub const KIND_NOUNS: &[(&str, EntityLabel)] = &[
    ("folder", EntityLabel::File),
    ("directory", EntityLabel::File),
    ("file", EntityLabel::File),
    ("doc", EntityLabel::File),
    ("document", EntityLabel::File),
    ("sheet", EntityLabel::File),
    ("spreadsheet", EntityLabel::File),
    ("workbook", EntityLabel::File),
    ("deck", EntityLabel::File),
    ("presentation", EntityLabel::File),
    ("channel", EntityLabel::Channel),
    ("group", EntityLabel::Channel),
    ("thread", EntityLabel::Channel),
    ("service", EntityLabel::Resource),
    ("project", EntityLabel::Resource),
    ("repo", EntityLabel::Resource),
    ("repository", EntityLabel::Resource),
    ("pipeline", EntityLabel::Resource),
    ("workflow", EntityLabel::Resource),
    ("cluster", EntityLabel::Resource),
    ("bucket", EntityLabel::Resource),
    ("database", EntityLabel::Resource),
];

/// Words besides determiners and pronouns that end a name read backwards from its kind noun.
pub const NAME_STOPS: &[&str] = &[
    "to", "into", "in", "from", "of", "on", "at", "for", "with", "and", "or", "all", "new", "same",
    "which", "whole", "entire",
];

/// Whether `word` (lowercase) ends a name read backwards from its kind
/// noun: "the Legal folder" is `Legal folder`, "into backup folder" is
/// `backup folder`.
pub fn stops_a_name(word: &str) -> bool {
    DETERMINERS.contains(&word) || PRONOUNS.contains(&word) || NAME_STOPS.contains(&word)
}

// Clauses: pronouns and delegations.

/// Words that stand for an object named earlier ("cancel the deploy and trigger it again").
pub const PRONOUNS: &[&str] = &["it", "them", "this", "that", "these", "those"];

/// Nouns that name data an agent reads; a delegation's source starts there ("the email").
pub const DATA_NOUNS: &[&str] = &[
    "email",
    "emails",
    "mail",
    "message",
    "messages",
    "note",
    "notes",
    "doc",
    "docs",
    "document",
    "file",
    "page",
    "ticket",
    "checklist",
    "list",
    "instructions",
    "pdf",
    "sheet",
    "spreadsheet",
    "text",
    "sms",
    "thread",
    "comment",
    "issue",
    "card",
    "memo",
    "letter",
    "readme",
    "wiki",
    "site",
    "website",
    "link",
    "post",
    "chat",
    "dm",
    "voicemail",
    "tasks",
    "steps",
    "todo",
];

/// Verbs that close a delegation's source ("what the email says"), longest first.
pub const DELEGATION_VERBS: &[&str] = &[
    "asks you to do",
    "says to do",
    "wants done",
    "asks for",
    "tells you",
    "tells me",
    "asks",
    "says",
    "wants",
    "requests",
    "tells",
    "lists",
    "describes",
    "mentions",
    "instructs",
    "requires",
    "suggests",
];

// The keyword-overlap baseline encoder (no model).

/// Words the keyword baseline leaves out of its bag of words: function words and "parameters".
pub const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "to",
    "of",
    "for",
    "and",
    "or",
    "in",
    "on",
    "at",
    "by",
    "with",
    "from",
    "my",
    "me",
    "i",
    "you",
    "your",
    "it",
    "is",
    "are",
    "be",
    "this",
    "that",
    "please",
    "can",
    "could",
    "would",
    "will",
    "do",
    "does",
    "all",
    "any",
    "some",
    "our",
    "we",
    "us",
    "as",
    "if",
    "so",
    "then",
    "also",
    "into",
    "about",
    "what",
    "which",
    "who",
    "when",
    "how",
    "parameters",
];

/// Verbs the keyword baseline tags as ACTION spans.
pub const KEYWORD_VERBS: &[&str] = &[
    "send",
    "book",
    "pay",
    "email",
    "create",
    "delete",
    "cancel",
    "reschedule",
    "move",
    "share",
    "post",
    "message",
    "transfer",
    "schedule",
    "invite",
    "add",
    "remove",
    "update",
    "set",
    "turn",
    "lock",
    "unlock",
    "reply",
    "forward",
    "upload",
    "order",
    "buy",
    "return",
    "deploy",
    "restart",
    "assign",
    "close",
    "open",
    "show",
    "list",
    "find",
    "check",
    "get",
    "tell",
    "let",
    "follow",
    "do",
    "rename",
    "copy",
    "change",
    "reset",
    "archive",
    "text",
    "call",
    "scale",
    "rollback",
];

/// First words that make the keyword baseline read a clause as a question.
pub const QUESTION_STARTS: &[&str] = &[
    "what", "which", "who", "when", "where", "how", "is", "are", "do", "does", "did", "show",
    "list", "find", "check", "any", "can", "tell",
];
