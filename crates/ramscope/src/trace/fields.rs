//! The fields of `.rstrace` records: numbers that must fit, `%XX` escapes, `key=value`
//! lists. Each returns a short message; the record parser adds the file and line.

use super::format::{Kind, PyFrame};

/// A problem with one field, turned into a [`super::format::FormatError`] with file and
/// line by the caller.
pub type Field<T> = Result<T, String>;

pub fn one<'a>(f: &[&'a str]) -> Field<&'a str> {
    match f {
        [v] => Ok(v),
        _ => Err(format!("expected one field, found {}", f.len())),
    }
}

pub fn exactly<'a, const N: usize>(f: &[&'a str]) -> Field<[&'a str; N]> {
    <[&str; N]>::try_from(f).map_err(|_| format!("expected {N} fields, found {}", f.len()))
}

/// The kind of a `total`, or `None` for one this reader does not know.
pub fn kind_and_rest<'a, 'b>(f: &'a [&'b str]) -> Field<(Option<Kind>, &'a [&'b str])> {
    match f {
        [kind, rest @ ..] => Ok((Kind::from_name(kind), rest)),
        [] => Err("expected a kind".into()),
    }
}

/// A decimal number that fits its type: an overflow is an error, never a wrap.
pub fn number<T: std::str::FromStr>(s: &str) -> Field<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{:?} is not a decimal number", ellipsis(s)));
    }
    s.parse()
        .map_err(|_| format!("{} is too large", ellipsis(s)))
}

/// A number or `-` (unknown).
pub fn maybe<T: std::str::FromStr>(s: &str) -> Field<Option<T>> {
    if s == "-" {
        Ok(None)
    } else {
        number(s).map(Some)
    }
}

pub fn hex(s: &str) -> Field<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{:?} is not a hex number", ellipsis(s)));
    }
    u64::from_str_radix(s, 16).map_err(|_| format!("{} is too large", ellipsis(s)))
}

pub fn flag(s: &str) -> Field<bool> {
    match s {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(format!("{:?} is not 0 or 1", ellipsis(s))),
    }
}

/// A comma-separated list, or `-` for none.
pub fn list<T>(s: &str, item: impl Fn(&str) -> Field<T>) -> Field<Vec<T>> {
    if s == "-" {
        return Ok(Vec::new());
    }
    s.split(',').map(item).collect()
}

pub fn py_frame(s: &str) -> Field<PyFrame> {
    let mut parts = s.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(file), Some(function), Some(line), None) => Ok(PyFrame {
            file: number(file)?,
            function: number(function)?,
            line: maybe(line)?,
        }),
        _ => Err(format!(
            "{:?} is not a Python frame (file:function:line)",
            ellipsis(s)
        )),
    }
}

/// Long hostile values are shown shortened in errors.
pub fn ellipsis(s: &str) -> String {
    if s.len() <= 40 {
        s.to_string()
    } else {
        let head: String = s.chars().take(40).collect();
        format!("{head}…")
    }
}

/// The `key=value` fields of a record; unknown keys are a newer writer's and are ignored.
pub struct Keyed<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Keyed<'a> {
    pub fn new(f: &[&'a str]) -> Field<Keyed<'a>> {
        let mut fields = Vec::with_capacity(f.len());
        for item in f {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{:?} is not key=value", ellipsis(item)))?;
            if fields.iter().any(|(seen, _)| *seen == k) {
                return Err(format!("{k} appears twice"));
            }
            fields.push((k, v));
        }
        Ok(Keyed { fields })
    }

    pub fn raw(&self, key: &str) -> Field<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("no {key}= field"))
    }

    pub fn get<T: std::str::FromStr>(&self, key: &str) -> Field<T> {
        number(self.raw(key)?).map_err(|e| format!("{key}: {e}"))
    }
}

/// Undoes the `%XX` escaping. `%` alone is the empty string; other bytes must be the
/// printable ASCII the writer leaves as is. Bytes that are not UTF-8 are shown as U+FFFD.
pub fn unescape(s: &str) -> Field<String> {
    if s == "%" {
        return Ok(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let pair = b.get(i + 1..i + 3).ok_or("a % escape is cut short")?;
            let digits = std::str::from_utf8(pair).map_err(|_| "a bad % escape")?;
            let byte = u8::from_str_radix(digits, 16)
                .ok()
                .filter(|_| pair.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(|| format!("%{digits} is not a % escape"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape("%").unwrap(), "");
        assert_eq!(unescape("a%20b%25c").unwrap(), "a b%c");
        assert_eq!(unescape("%C3%A9").unwrap(), "é");
        assert_eq!(unescape("%FF").unwrap(), "\u{fffd}");
        assert_eq!(unescape("%0A").unwrap(), "\n");
        assert!(unescape("100%").is_err());
        assert!(unescape("%4").is_err());
        assert!(unescape("%zz").is_err());
        assert!(unescape("%+1").is_err());
    }

    #[test]
    fn numbers_must_fit() {
        assert_eq!(number::<u64>("18446744073709551615"), Ok(u64::MAX));
        assert!(number::<u64>("18446744073709551616")
            .unwrap_err()
            .contains("too large"));
        assert!(number::<u32>("4294967296").is_err());
        assert!(number::<u64>("+1").is_err());
        assert!(number::<u64>("").is_err());
        assert_eq!(hex("ffffffffffffffff"), Ok(u64::MAX));
        assert!(hex("10000000000000000").is_err());
        assert!(hex("0x10").is_err());
        assert_eq!(maybe::<u64>("-"), Ok(None));
        let long = "9".repeat(5000);
        assert!(number::<u64>(&long).unwrap_err().len() < 100);
    }

    #[test]
    fn keyed_fields() {
        let k = Keyed::new(&["a=1", "b=-"]).unwrap();
        assert_eq!(k.get::<u64>("a"), Ok(1));
        assert_eq!(k.raw("b"), Ok("-"));
        assert!(k.get::<u64>("c").unwrap_err().contains("no c= field"));
        assert!(Keyed::new(&["a=1", "a=2"]).is_err());
        assert!(Keyed::new(&["a"]).is_err());
    }
}
