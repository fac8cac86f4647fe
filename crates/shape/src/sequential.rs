//! `nn.Sequential(...)` as pasted from Python: split into its layers' expressions.

use crate::ParseError;

/// The layer expressions of a chain: `texts` as they are, or, when `texts` is one
/// `nn.Sequential(a, b, ...)` expression, its layers `a`, `b`, ... (commas inside parentheses,
/// brackets and quotes do not split). Each can then be read by [`crate::parse_layer`].
///
/// ```
/// use convmat_shape::split_sequential;
/// let layers = split_sequential(&["nn.Sequential(nn.Conv2d(1, 6, (3, 3)), nn.ReLU())"]).unwrap();
/// assert_eq!(layers, ["nn.Conv2d(1, 6, (3, 3))", "nn.ReLU()"]);
/// assert_eq!(split_sequential(&["Conv2d(1, 6, 3)", "Flatten()"]).unwrap().len(), 2);
/// ```
///
/// # Errors
/// A `Sequential` without its parentheses, with unbalanced ones, or with no layers.
pub fn split_sequential<S: AsRef<str>>(texts: &[S]) -> Result<Vec<String>, ParseError> {
    let all = || texts.iter().map(|t| t.as_ref().to_string()).collect();
    let [only] = texts else { return Ok(all()) };
    let t = only.as_ref().trim();
    let name_end = t.find('(').unwrap_or(t.len());
    let name = t[..name_end].trim().trim_start_matches("torch.").trim_start_matches("nn.");
    if name != "Sequential" {
        return Ok(all());
    }
    let error = |column: usize, message: &str| ParseError { text: t.to_string(), column, message: message.into() };
    let Some(inner) = t[name_end..].strip_prefix('(').and_then(|s| s.strip_suffix(')')) else {
        return Err(error(name_end + 1, "malformed Sequential expression: expected Sequential(layer, layer, ...)"));
    };
    let (mut depth, mut quote, mut start, mut parts) = (0i64, None, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => {
                depth -= 1;
                if depth < 0 {
                    return Err(error(name_end + 2 + i, "unbalanced ')' in Sequential(...)"));
                }
            }
            (None, ',') if depth == 0 => {
                parts.push(inner[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 || quote.is_some() {
        return Err(error(t.len(), "unbalanced parentheses or quotes in Sequential(...)"));
    }
    parts.push(inner[start..].trim().to_string());
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        return Err(error(name_end + 1, "Sequential() has no layers"));
    }
    Ok(parts)
}
