//! A reader for PyTorch constructor expressions such as `Conv2d(6, 16, kernel_size=3, padding='same')`.
//!
//! Grammar: `[torch.][nn.]Name(arg, ..., key=value, ...)`; values are integers (with `+ - * //`
//! arithmetic, so `Linear(16*6*6, 120)` reads as written), floats, `'strings'`, `True`/`False`/`None`,
//! and tuples or lists of those.

use crate::ParseError;

/// A literal value with the byte span it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Value {
    pub kind: ValueKind,
    pub span: (usize, usize),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ValueKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    Tuple(Vec<Value>),
}

/// One argument of a call.
#[derive(Clone, Debug)]
pub(crate) struct Arg {
    pub keyword: Option<(String, usize)>,
    pub value: Value,
}

/// `Name(args)`.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub name: String,
    pub name_at: usize,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Punct(&'static str),
}

/// Deepest nesting of brackets and unary minus signs an expression may have.
const MAX_DEPTH: usize = 64;

pub(crate) struct Parser<'a> {
    text: &'a str,
    toks: Vec<(Tok, usize, usize)>,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub fn error_at(text: &str, byte: usize, message: impl Into<String>) -> ParseError {
        let column = text.get(..byte.min(text.len())).map_or(byte, |s| s.chars().count()) + 1;
        ParseError { text: text.to_string(), column, message: message.into() }
    }

    fn err(&self, byte: usize, message: impl Into<String>) -> ParseError {
        Self::error_at(self.text, byte, message)
    }

    fn tokenize(text: &'a str) -> Result<Self, ParseError> {
        let b = text.as_bytes();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let start = i;
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                    i += 1;
                }
                toks.push((Tok::Ident(text[start..i].to_string()), start, i));
            } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                    // exponents such as 1e-5
                    if (b[i] == b'e' || b[i] == b'E') && matches!(b.get(i + 1), Some(b'-' | b'+')) {
                        i += 1;
                    }
                    i += 1;
                }
                let lit = text[start..i].replace('_', "");
                let tok = if let Ok(v) = lit.parse::<i64>() {
                    Tok::Int(v)
                } else if let Ok(v) = lit.parse::<f64>() {
                    Tok::Float(v)
                } else {
                    return Err(Self::error_at(text, start, format!("'{}' is not a number", &text[start..i])));
                };
                toks.push((tok, start, i));
            } else if c == b'\'' || c == b'"' {
                let close = text[i + 1..]
                    .find(c as char)
                    .ok_or_else(|| Self::error_at(text, start, "unterminated string (no closing quote)"))?;
                let s = &text[i + 1..i + 1 + close];
                i += close + 2;
                toks.push((Tok::Str(s.to_string()), start, i));
            } else {
                let p = ["//", "(", ")", "[", "]", ",", "=", "*", "+", "-"]
                    .into_iter()
                    .find(|p| text[i..].starts_with(p))
                    .ok_or_else(|| {
                        let ch = text[i..].chars().next().unwrap_or(' ');
                        Self::error_at(text, start, format!("unexpected character '{ch}'"))
                    })?;
                i += p.len();
                toks.push((Tok::Punct(p), start, i));
            }
        }
        Ok(Self { text, toks, pos: 0, depth: 0 })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.text.len(), |t| t.1)
    }

    fn prev_end(&self) -> usize {
        self.pos.checked_sub(1).and_then(|p| self.toks.get(p)).map_or(0, |t| t.2)
    }

    fn eat(&mut self, p: &'static str) -> bool {
        if self.peek() == Some(&Tok::Punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &'static str, what: &str) -> Result<(), ParseError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.err(self.at(), format!("expected '{p}' {what}, found {}", self.describe())))
        }
    }

    fn describe(&self) -> String {
        match self.toks.get(self.pos) {
            None => "end of text".into(),
            Some((_, s, e)) => format!("'{}'", &self.text[*s..*e]),
        }
    }

    /// Parses the whole text as one call.
    pub fn call(text: &'a str) -> Result<Call, ParseError> {
        let mut p = Self::tokenize(text)?;
        let (name, name_at) = match p.toks.first() {
            Some((Tok::Ident(n), s, _)) => (n.clone(), *s),
            _ => return Err(p.err(p.at(), "expected a layer name such as Conv2d(...)")),
        };
        p.pos = 1;
        let name = name.trim_start_matches("torch.").trim_start_matches("nn.").to_string();
        let mut args = Vec::new();
        if p.peek().is_none() {
            return Ok(Call { name, name_at, args });
        }
        p.expect("(", "after the layer name")?;
        let mut seen_keyword = false;
        while !p.eat(")") {
            if p.peek().is_none() {
                return Err(p.err(p.at(), "missing ')' at the end"));
            }
            let keyword = match (p.toks.get(p.pos), p.toks.get(p.pos + 1)) {
                (Some((Tok::Ident(k), s, _)), Some((Tok::Punct("="), _, _))) => {
                    let kw = (k.clone(), *s);
                    p.pos += 2;
                    Some(kw)
                }
                _ => None,
            };
            if keyword.is_some() {
                seen_keyword = true;
            } else if seen_keyword {
                return Err(p.err(p.at(), "positional argument follows keyword argument"));
            }
            let value = p.value()?;
            args.push(Arg { keyword, value });
            if p.peek().is_none() {
                return Err(p.err(p.at(), "missing ')' at the end"));
            }
            if !p.eat(",") && p.peek() != Some(&Tok::Punct(")")) {
                return Err(p.err(p.at(), format!("expected ',' or ')', found {}", p.describe())));
            }
        }
        if p.peek().is_some() {
            return Err(p.err(p.at(), format!("unexpected {} after the closing ')'", p.describe())));
        }
        Ok(Call { name, name_at, args })
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        let start = self.at();
        let tok = self.peek().cloned();
        let kind = match tok {
            Some(Tok::Punct(open @ ("(" | "["))) => {
                self.pos += 1;
                let close = if open == "(" { ")" } else { "]" };
                let mut items = Vec::new();
                while !self.eat(close) {
                    if self.peek().is_none() {
                        return Err(self.err(start, format!("'{open}' is never closed")));
                    }
                    items.push(self.nested(Self::value)?);
                    if !self.eat(",") && self.peek() != Some(&Tok::Punct(close)) {
                        return Err(
                            self.err(self.at(), format!("expected ',' or '{close}', found {}", self.describe()))
                        );
                    }
                }
                ValueKind::Tuple(items)
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                ValueKind::Str(s)
            }
            Some(Tok::Ident(id)) if matches!(id.as_str(), "True" | "False" | "None") => {
                self.pos += 1;
                match id.as_str() {
                    "True" => ValueKind::Bool(true),
                    "False" => ValueKind::Bool(false),
                    _ => ValueKind::None,
                }
            }
            Some(Tok::Float(v)) => {
                self.pos += 1;
                ValueKind::Float(v)
            }
            Some(Tok::Punct("-")) if matches!(self.toks.get(self.pos + 1), Some((Tok::Float(_), _, _))) => {
                self.pos += 1;
                let Some(Tok::Float(v)) = self.peek().cloned() else { unreachable!() };
                self.pos += 1;
                ValueKind::Float(-v)
            }
            Some(Tok::Int(_) | Tok::Punct("-")) => ValueKind::Int(self.sum()?),
            _ => return Err(self.err(start, format!("expected a value, found {}", self.describe()))),
        };
        Ok(Value { kind, span: (start, self.prev_end()) })
    }

    /// Runs `f` one nesting level deeper: nesting beyond [`MAX_DEPTH`] is an error, not a stack overflow.
    fn nested<T>(&mut self, f: fn(&mut Self) -> Result<T, ParseError>) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(self.at(), format!("nested more than {MAX_DEPTH} levels deep")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn sum(&mut self) -> Result<i64, ParseError> {
        let start = self.at();
        let mut acc = self.product()?;
        loop {
            let add = if self.eat("+") {
                true
            } else if self.eat("-") {
                false
            } else {
                return Ok(acc);
            };
            let rhs = self.product()?;
            acc = if add { acc.checked_add(rhs) } else { acc.checked_sub(rhs) }
                .ok_or_else(|| self.err(start, "integer overflow"))?;
        }
    }

    fn product(&mut self) -> Result<i64, ParseError> {
        let start = self.at();
        let mut acc = self.atom()?;
        loop {
            let at = self.at();
            if self.eat("*") {
                acc = acc.checked_mul(self.atom()?).ok_or_else(|| self.err(start, "integer overflow"))?;
            } else if self.eat("//") {
                let d = self.atom()?;
                if d == 0 {
                    return Err(self.err(at, "division by zero"));
                }
                // i64::MIN // -1 is 2^63, one past i64::MAX
                acc = acc.checked_div_euclid(d).ok_or_else(|| self.err(start, "integer overflow"))?;
            } else {
                return Ok(acc);
            }
        }
    }

    fn atom(&mut self) -> Result<i64, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Int(v)) => {
                self.pos += 1;
                Ok(v)
            }
            Some(Tok::Punct("-")) => {
                let at = self.at();
                self.pos += 1;
                let v = self.nested(Self::atom)?;
                // -(i64::MIN) is one past i64::MAX
                v.checked_neg().ok_or_else(|| self.err(at, "integer overflow"))
            }
            Some(Tok::Punct("(")) => {
                self.pos += 1;
                let v = self.nested(Self::sum)?;
                self.expect(")", "to close the parenthesis")?;
                Ok(v)
            }
            _ => Err(self.err(self.at(), format!("expected an integer, found {}", self.describe()))),
        }
    }
}

/// Arguments bound to a signature: one slot per parameter name.
pub(crate) struct Bound<'c> {
    text: &'c str,
    layer: &'c str,
    names: &'static [&'static str],
    slots: Vec<Option<&'c Value>>,
}

impl<'c> Bound<'c> {
    /// Binds `call`'s arguments to `names` (PyTorch's parameter order); the first `required` are required.
    pub fn new(
        text: &'c str,
        call: &'c Call,
        names: &'static [&'static str],
        required: usize,
    ) -> Result<Self, ParseError> {
        let mut slots: Vec<Option<&Value>> = vec![None; names.len()];
        let mut next = 0;
        for arg in &call.args {
            let i = match &arg.keyword {
                None => {
                    if next >= names.len() {
                        return Err(Parser::error_at(
                            text,
                            arg.value.span.0,
                            format!(
                                "{} takes at most {} positional arguments ({})",
                                call.name,
                                names.len(),
                                names.join(", ")
                            ),
                        ));
                    }
                    next += 1;
                    next - 1
                }
                Some((k, at)) => names.iter().position(|n| n == k).ok_or_else(|| {
                    Parser::error_at(
                        text,
                        *at,
                        format!("{} has no argument '{k}'; valid: {}", call.name, names.join(", ")),
                    )
                })?,
            };
            if slots[i].is_some() {
                let at = arg.keyword.as_ref().map_or(arg.value.span.0, |k| k.1);
                return Err(Parser::error_at(text, at, format!("argument '{}' given twice", names[i])));
            }
            slots[i] = Some(&arg.value);
        }
        if let Some(missing) = (0..required).find(|&i| slots[i].is_none()) {
            return Err(Parser::error_at(
                text,
                call.name_at,
                format!("{} needs argument '{}'", call.name, names[missing]),
            ));
        }
        Ok(Self { text, layer: &call.name, names, slots })
    }

    fn slot(&self, name: &str) -> Option<&'c Value> {
        let i = self.names.iter().position(|n| *n == name).expect("parameter name in signature");
        self.slots[i].filter(|v| v.kind != ValueKind::None)
    }

    fn bad(&self, v: &Value, message: String) -> ParseError {
        Parser::error_at(self.text, v.span.0, message)
    }

    /// A non-negative int.
    pub fn usize(&self, name: &str, default: usize) -> Result<usize, ParseError> {
        match self.slot(name) {
            None => Ok(default),
            Some(v) => match v.kind {
                ValueKind::Int(i) if i >= 0 => Ok(i as usize),
                _ => Err(self.bad(v, format!("{} of {} must be a non-negative integer", name, self.layer))),
            },
        }
    }

    /// Any int.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, ParseError> {
        match self.slot(name) {
            None => Ok(default),
            Some(v) => match v.kind {
                ValueKind::Int(i) => Ok(i),
                _ => Err(self.bad(v, format!("{} of {} must be an integer", name, self.layer))),
            },
        }
    }

    /// An int or a tuple of non-negative ints; `None` when absent.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<usize>>, ParseError> {
        self.slot(name).map(|v| self.int_list(name, v)).transpose()
    }

    fn int_list(&self, name: &str, v: &Value) -> Result<Vec<usize>, ParseError> {
        let one =
            |v: &Value| match v.kind {
                ValueKind::Int(i) if i >= 0 => Ok(i as usize),
                _ => Err(self
                    .bad(v, format!("{} of {} must be a non-negative integer or a tuple of them", name, self.layer))),
            };
        match &v.kind {
            ValueKind::Tuple(items) if !items.is_empty() => items.iter().map(one).collect(),
            _ => one(v).map(|x| vec![x]),
        }
    }

    /// An int or a tuple whose entries may be `None`.
    pub fn optional_ints(&self, name: &str) -> Result<Vec<Option<usize>>, ParseError> {
        let Some(v) = self.slots[self.names.iter().position(|n| *n == name).expect("name")] else {
            return Ok(vec![]);
        };
        let one = |v: &Value| match v.kind {
            ValueKind::Int(i) if i >= 1 => Ok(Some(i as usize)),
            ValueKind::None => Ok(None),
            _ => Err(self.bad(v, format!("{} of {} must be a positive integer or None", name, self.layer))),
        };
        match &v.kind {
            ValueKind::Tuple(items) => items.iter().map(one).collect(),
            _ => one(v).map(|x| vec![x]),
        }
    }

    /// A bool.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ParseError> {
        match self.slot(name) {
            None => Ok(default),
            Some(v) => match v.kind {
                ValueKind::Bool(b) => Ok(b),
                _ => Err(self.bad(v, format!("{} of {} must be True or False", name, self.layer))),
            },
        }
    }

    /// A string or an int/tuple (for `padding`).
    pub fn raw(&self, name: &str) -> Option<&'c Value> {
        self.slot(name)
    }

    /// Error at a value.
    pub fn error(&self, v: &Value, message: String) -> ParseError {
        self.bad(v, message)
    }

    /// Ints of a value (for `padding`).
    pub fn ints_of(&self, name: &str, v: &Value) -> Result<Vec<usize>, ParseError> {
        self.int_list(name, v)
    }
}
