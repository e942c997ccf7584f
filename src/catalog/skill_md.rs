//! `SKILL.md` front matter (Agent Skills): a YAML block between `---` lines
//! at the top of the file, with a required `name` and `description`.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::CatalogError;

/// The front matter fields telos uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SkillFrontMatter {
    /// 1–64 of `a-z0-9-`, no leading, trailing or double hyphen.
    pub name: String,
    /// 1–1024 characters: what the skill does and when to use it.
    pub description: String,
    /// Licence of the skill.
    #[serde(default)]
    pub license: Option<String>,
    /// Environment requirements.
    #[serde(default)]
    pub compatibility: Option<String>,
    /// Free string map.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Tools the skill may use: a space-separated string or a list.
    #[serde(default, rename = "allowed-tools")]
    pub allowed_tools: Option<AllowedTools>,
}

/// `allowed-tools` in either of its spellings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AllowedTools {
    /// `allowed-tools: Read Grep`.
    Spaced(String),
    /// `allowed-tools: [Read, Grep]`.
    List(Vec<String>),
}

impl AllowedTools {
    /// The tool names.
    pub fn names(&self) -> Vec<String> {
        match self {
            Self::Spaced(s) => s.split_whitespace().map(str::to_string).collect(),
            Self::List(l) => l.clone(),
        }
    }
}

/// Checks an Agent Skills name.
pub fn valid_skill_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Parses and validates the front matter of a `SKILL.md` file.
pub fn parse_skill_md(text: &str) -> Result<SkillFrontMatter, CatalogError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(CatalogError::SkillMd(
            "front matter must start with a `---` line".into(),
        ));
    }
    let mut yaml = String::new();
    let mut closed = false;
    for line in lines {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        yaml.push_str(line);
        yaml.push('\n');
    }
    if !closed {
        return Err(CatalogError::SkillMd(
            "front matter is not closed by a `---` line".into(),
        ));
    }
    let fm: SkillFrontMatter =
        serde_yaml_ng::from_str(&yaml).map_err(|e| CatalogError::SkillMd(e.to_string()))?;
    if !valid_skill_name(&fm.name) {
        return Err(CatalogError::SkillMd(format!(
            "`name` `{}` must be 1-64 of a-z, 0-9 and single inner hyphens",
            fm.name
        )));
    }
    let len = fm.description.chars().count();
    if len == 0 || len > 1024 {
        return Err(CatalogError::SkillMd(
            "`description` must have 1-1024 characters".into(),
        ));
    }
    Ok(fm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_front_matter() {
        let md = "---\nname: pdf-tools\ndescription: Extract text from PDF files.\nallowed-tools: Read Bash\nmetadata:\n  owner: docs\n---\n# Body\n";
        let fm = parse_skill_md(md).unwrap();
        assert_eq!(fm.name, "pdf-tools");
        assert_eq!(
            fm.allowed_tools.unwrap().names(),
            vec!["Read".to_string(), "Bash".to_string()]
        );
        assert_eq!(fm.metadata["owner"], "docs");
    }

    #[test]
    fn accepts_a_list_of_allowed_tools() {
        let md = "---\nname: a\ndescription: b\nallowed-tools: [x, y]\n---\n";
        assert_eq!(
            parse_skill_md(md).unwrap().allowed_tools.unwrap().names(),
            vec!["x".to_string(), "y".to_string()]
        );
    }

    #[test]
    fn rejects_bad_names_and_missing_fences() {
        assert!(parse_skill_md("name: x\n").is_err());
        assert!(parse_skill_md("---\nname: x\ndescription: y\n").is_err());
        for bad in ["-x", "x-", "a--b", "Upper", ""] {
            let md = format!("---\nname: \"{bad}\"\ndescription: d\n---\n");
            assert!(parse_skill_md(&md).is_err(), "{bad}");
        }
        assert!(parse_skill_md("---\nname: ok\ndescription: \"\"\n---\n").is_err());
    }
}
