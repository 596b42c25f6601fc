//! A configuration's documentation, written into its default file: each section and each key
//! with the doc comment of its field above it, so the example a user edits and the code it
//! configures say the same thing (they are one text). The schema comes from the types
//! (`schemars`, which reads their doc comments); the keys, their order and their defaults from
//! the default configuration as TOML.
use serde_json::Value;

/// Comment lines are wrapped at this width.
const WIDTH: usize = 96;

/// `rendered` (a default configuration as `toml::to_string` writes it) with the documentation
/// of `T` written above each section and key, `intro` first. Keys that have no default (an
/// unset option) are listed, commented out, at the end of their section.
pub fn commented<T: schemars::JsonSchema>(rendered: &str, intro: &str) -> String {
    commented_leaving_out::<T>(rendered, intro, &[])
}

/// [`commented`], with the keys named in `left_out` (`section.key`) written commented out:
/// defaults that depend on the machine (where the models were found), shown as installed.
pub fn commented_leaving_out<T: schemars::JsonSchema>(
    rendered: &str,
    intro: &str,
    left_out: &[&str],
) -> String {
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    let mut out = String::new();
    comment(&mut out, intro);
    out.push('\n');
    let mut seen: Vec<String> = Vec::new();
    let mut here = object(&schema, &schema).clone();
    let mut section = String::new();
    for line in rendered.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            unset(&mut out, &schema, &here, &seen);
            seen.clear();
            let name = name.trim_matches(|c| c == '[' || c == ']');
            section = name.to_string();
            let path: Vec<String> = name.split('.').map(str::to_string).collect();
            let (about, node) = walk(&schema, &path);
            here = node;
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            if let Some(about) = about {
                comment(&mut out, &about);
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if let Some((key, value)) = trimmed.split_once(" = ") {
            let key = key.trim().trim_matches('"').to_string();
            if let Some(about) = describe(&schema, &here, &key) {
                comment(&mut out, &about);
            }
            if value.trim() == "[]" {
                tables_of(&mut out, &schema, &here, &key);
            }
            let left = left_out.contains(&format!("{section}.{key}").as_str());
            seen.push(key);
            if left {
                push_comment(&mut out, line, "");
                continue;
            }
        }
        if trimmed.is_empty() && out.ends_with("\n\n") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    unset(&mut out, &schema, &here, &seen);
    out
}

/// The properties of `node` that the default left out (unset options), commented out.
fn unset(out: &mut String, root: &Value, node: &Value, seen: &[String]) {
    let Some(props) = node.get("properties").and_then(Value::as_object) else { return };
    for (key, prop) in props {
        let sub = object(root, prop);
        if seen.contains(key) || sub.get("properties").is_some() {
            continue;
        }
        let about = describe(root, node, key).unwrap_or_default();
        comment(out, &format!("{key} (not set by default): {about}"));
        push_comment(out, &format!("{key} = ..."), "");
    }
}

/// For a list of tables left empty (`[[forward]]`): what one of them takes, key by key.
fn tables_of(out: &mut String, root: &Value, node: &Value, key: &str) {
    let Some(items) = node.get("properties").and_then(|p| p.get(key)).and_then(|p| p.get("items"))
    else {
        return;
    };
    let item = object(root, items);
    let Some(props) = item.get("properties").and_then(Value::as_object) else { return };
    push_comment(out, &format!("Each [[{key}]] table takes:"), "");
    for (name, prop) in props {
        let about = text(prop).or_else(|| text(object(root, prop))).unwrap_or_default();
        comment(out, &format!("  {name}: {about}"));
    }
}

/// The schema of the table at `path` and the words that describe it.
fn walk(root: &Value, path: &[String]) -> (Option<String>, Value) {
    let mut node = object(root, root).clone();
    let mut about = None;
    for key in path {
        about = describe(root, &node, key);
        let prop = node.get("properties").and_then(|p| p.get(key)).cloned().unwrap_or(Value::Null);
        node = object(root, &prop).clone();
    }
    (about, node)
}

/// The field's own doc comment, else its type's.
fn describe(root: &Value, node: &Value, key: &str) -> Option<String> {
    let prop = node.get("properties")?.get(key)?;
    text(prop).or_else(|| text(object(root, prop)))
}

fn text(v: &Value) -> Option<String> {
    v.get("description").and_then(Value::as_str).map(str::to_string)
}

/// `v` with a reference followed (`$ref`, or one branch of an option's `anyOf` / `oneOf`).
fn object<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        return root.get("$defs").and_then(|d| d.get(name)).unwrap_or(v);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(branch) = v
            .get(key)
            .and_then(Value::as_array)
            .and_then(|b| b.iter().find(|x| x.get("type").and_then(Value::as_str) != Some("null")))
        {
            return object(root, branch);
        }
    }
    v
}

/// `text` as comment lines, paragraphs kept, wrapped.
fn comment(out: &mut String, text: &str) {
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            push_comment(out, "", "");
        }
        let words: Vec<&str> = paragraph.split_whitespace().collect();
        let mut line = String::new();
        for w in words {
            if !line.is_empty() && line.len() + 1 + w.len() > WIDTH - 2 {
                push_comment(out, &line, "");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(w);
        }
        push_comment(out, &line, "");
    }
}

fn push_comment(out: &mut String, line: &str, indent: &str) {
    out.push_str(indent);
    out.push('#');
    if !line.is_empty() {
        out.push(' ');
        out.push_str(line);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of a test.
    #[derive(serde::Serialize, schemars::JsonSchema)]
    struct Settings {
        /// How loud it is.
        volume: u32,
        /// Where it plays.
        room: Room,
        /// Who may change it.
        owner: Option<String>,
    }

    /// A room of the house, with its size.
    #[derive(serde::Serialize, schemars::JsonSchema)]
    struct Room {
        /// In square metres.
        size: f32,
    }

    #[test]
    fn each_section_and_key_carries_its_doc_comment() {
        let rendered = "volume = 3\n\n[room]\nsize = 12.5\n";
        let text = commented::<Settings>(rendered, "An example.");
        assert!(text.starts_with("# An example.\n\n# How loud it is.\nvolume = 3\n"), "{text}");
        assert!(
            text.contains("\n# Where it plays.\n[room]\n# In square metres.\nsize = 12.5\n"),
            "{text}"
        );
        assert!(
            text.contains("# owner (not set by default): Who may change it.\n# owner = ...\n"),
            "{text}"
        );
        let text = commented_leaving_out::<Settings>(rendered, "An example.", &["room.size"]);
        assert!(text.contains("# In square metres.\n# size = 12.5\n"), "{text}");
    }
}
