//! Size formulas: byte counts over configuration names (`max_num_seqs × max_model_len × 4`),
//! printed the way a person writes them and evaluated with checked arithmetic for one
//! configuration.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::units::Checked;

/// A byte count as an expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Formula {
    Const(u64),
    /// A configuration name (`max_num_seqs`), model dimension (`hidden_size`), element size
    /// (`dtype`) or a name left symbolic (`kv_cache_tensor.size`).
    Name(String),
    /// An argument of a function no caller was found for.
    Param(String),
    Mul(Vec<Formula>),
    Add(Vec<Formula>),
    Sub(Box<Formula>, Box<Formula>),
    /// Integer division, rounding down.
    Div(Box<Formula>, Box<Formula>),
    /// Integer division, rounding up (`cdiv`).
    CeilDiv(Box<Formula>, Box<Formula>),
    /// The next power of two at or above (`next_power_of_2`, the pinned allocator's rounding).
    Pow2(Box<Formula>),
    Max(Vec<Formula>),
    Min(Vec<Formula>),
    /// A size that depends on data or on code the scan does not follow; the text says what.
    Unknown(String),
}

/// Values for the names of formulas: one configuration.
pub type Bindings = BTreeMap<String, u64>;

impl Formula {
    pub fn name(s: &str) -> Formula {
        Formula::Name(s.to_string())
    }

    pub fn unknown(s: &str) -> Formula {
        Formula::Unknown(s.to_string())
    }

    /// `a × b`, flattened and with constants folded.
    // Not `std::ops::Mul`: these build and fold an expression by value, and the operator
    // form would hide that at the call sites (`Formula::mul(a, b)` reads as what it is).
    #[allow(clippy::should_implement_trait)]
    pub fn mul(a: Formula, b: Formula) -> Formula {
        Formula::product(vec![a, b])
    }

    /// The product of `terms`: nested products flattened, constants multiplied into one
    /// trailing factor (as people write `R × L × 4`), `× 1` dropped.
    pub fn product(terms: Vec<Formula>) -> Formula {
        let mut constant: u128 = 1;
        let mut rest = Vec::new();
        let mut stack = terms;
        stack.reverse();
        while let Some(t) = stack.pop() {
            match t {
                Formula::Const(c) => constant = constant.saturating_mul(u128::from(c)),
                Formula::Mul(inner) => stack.extend(inner.into_iter().rev()),
                other => rest.push(other),
            }
        }
        let constant = u64::try_from(constant).unwrap_or(u64::MAX);
        if constant == 0 {
            return Formula::Const(0);
        }
        if rest.is_empty() {
            return Formula::Const(constant);
        }
        if constant != 1 {
            rest.push(Formula::Const(constant));
        }
        if rest.len() == 1 {
            return rest.remove(0);
        }
        Formula::Mul(rest)
    }

    /// `a + b`, flattened and with constants folded.
    pub fn sum(terms: Vec<Formula>) -> Formula {
        let mut constant: u128 = 0;
        let mut rest = Vec::new();
        let mut stack = terms;
        stack.reverse();
        while let Some(t) = stack.pop() {
            match t {
                Formula::Const(c) => constant = constant.saturating_add(u128::from(c)),
                Formula::Add(inner) => stack.extend(inner.into_iter().rev()),
                other => rest.push(other),
            }
        }
        let constant = u64::try_from(constant).unwrap_or(u64::MAX);
        if rest.is_empty() {
            return Formula::Const(constant);
        }
        if constant != 0 {
            rest.push(Formula::Const(constant));
        }
        if rest.len() == 1 {
            return rest.remove(0);
        }
        Formula::Add(rest)
    }

    /// `a - b`, folded when both are constants.
    // Not `std::ops::Sub`: these build and fold an expression by value, and the operator
    // form would hide that at the call sites (`Formula::sub(a, b)` reads as what it is).
    #[allow(clippy::should_implement_trait)]
    pub fn sub(a: Formula, b: Formula) -> Formula {
        match (&a, &b) {
            (Formula::Const(x), Formula::Const(y)) => Formula::Const(x.saturating_sub(*y)),
            (_, Formula::Const(0)) => a,
            _ => Formula::Sub(Box::new(a), Box::new(b)),
        }
    }

    // Not `std::ops::Div`: these build and fold an expression by value, and the operator
    // form would hide that at the call sites (`Formula::div(a, b)` reads as what it is).
    #[allow(clippy::should_implement_trait)]
    pub fn div(a: Formula, b: Formula) -> Formula {
        match (&a, &b) {
            (Formula::Const(x), Formula::Const(y)) if *y != 0 => Formula::Const(x / y),
            (_, Formula::Const(1)) => a,
            _ => Formula::Div(Box::new(a), Box::new(b)),
        }
    }

    pub fn ceil_div(a: Formula, b: Formula) -> Formula {
        match (&a, &b) {
            (Formula::Const(x), Formula::Const(y)) if *y != 0 => Formula::Const(x.div_ceil(*y)),
            (_, Formula::Const(1)) => a,
            _ => Formula::CeilDiv(Box::new(a), Box::new(b)),
        }
    }

    pub fn pow2(a: Formula) -> Formula {
        match a {
            Formula::Const(x) => Formula::Const(Checked::new(x).pow2().raw()),
            Formula::Pow2(_) => a,
            other => Formula::Pow2(Box::new(other)),
        }
    }

    pub fn max(terms: Vec<Formula>) -> Formula {
        Formula::extreme(terms, true)
    }

    pub fn min(terms: Vec<Formula>) -> Formula {
        Formula::extreme(terms, false)
    }

    fn extreme(terms: Vec<Formula>, max: bool) -> Formula {
        let mut out: Vec<Formula> = Vec::new();
        let mut constant: Option<u64> = None;
        for t in terms {
            match t {
                // Sizes are never negative: `max(x, 0)` is `x`.
                Formula::Const(0) if max => {}
                Formula::Const(c) => {
                    constant = Some(match constant {
                        Some(k) if max => k.max(c),
                        Some(k) => k.min(c),
                        None => c,
                    })
                }
                other if !out.contains(&other) => out.push(other),
                _ => {}
            }
        }
        out.extend(constant.map(Formula::Const));
        match out.len() {
            0 => Formula::Const(0),
            1 => out.remove(0),
            _ if max => Formula::Max(out),
            _ => Formula::Min(out),
        }
    }

    /// Every name and parameter the formula uses, in order of first use.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(&mut |f| {
            if let Formula::Name(n) | Formula::Param(n) = f {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
        });
        out
    }

    pub fn has_params(&self) -> bool {
        let mut found = false;
        self.visit(&mut |f| found |= matches!(f, Formula::Param(_)));
        found
    }

    pub fn has_unknown(&self) -> bool {
        let mut found = false;
        self.visit(&mut |f| found |= matches!(f, Formula::Unknown(_)));
        found
    }

    fn visit(&self, f: &mut dyn FnMut(&Formula)) {
        f(self);
        match self {
            Formula::Mul(v) | Formula::Add(v) | Formula::Max(v) | Formula::Min(v) => {
                v.iter().for_each(|x| x.visit(f))
            }
            Formula::Sub(a, b) | Formula::Div(a, b) | Formula::CeilDiv(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Formula::Pow2(a) => a.visit(f),
            Formula::Const(_) | Formula::Name(_) | Formula::Param(_) | Formula::Unknown(_) => {}
        }
    }

    /// Replaces names by other formulas (used to instantiate a helper's parameters).
    pub fn substitute(&self, with: &dyn Fn(&Formula) -> Option<Formula>) -> Formula {
        if let Some(f) = with(self) {
            return f;
        }
        let sub = |x: &Formula| x.substitute(with);
        match self {
            Formula::Mul(v) => Formula::product(v.iter().map(sub).collect()),
            Formula::Add(v) => Formula::sum(v.iter().map(sub).collect()),
            Formula::Max(v) => Formula::max(v.iter().map(sub).collect()),
            Formula::Min(v) => Formula::min(v.iter().map(sub).collect()),
            Formula::Sub(a, b) => Formula::sub(sub(a), sub(b)),
            Formula::Div(a, b) => Formula::div(sub(a), sub(b)),
            Formula::CeilDiv(a, b) => Formula::ceil_div(sub(a), sub(b)),
            Formula::Pow2(a) => Formula::pow2(sub(a)),
            other => other.clone(),
        }
    }

    /// The bytes for one configuration, or the first name that has no value.
    pub fn eval(&self, b: &Bindings) -> Result<Checked, String> {
        let ev = |x: &Formula| x.eval(b);
        Ok(match self {
            Formula::Const(c) => Checked::new(*c),
            Formula::Name(n) | Formula::Param(n) => match b.get(n) {
                Some(v) => Checked::new(*v),
                None => return Err(n.clone()),
            },
            Formula::Unknown(t) => return Err(t.clone()),
            Formula::Mul(v) => {
                let mut acc = Checked::new(1);
                for x in v {
                    acc = acc * ev(x)?;
                }
                acc
            }
            Formula::Add(v) => {
                let mut acc = Checked::new(0);
                for x in v {
                    acc = acc + ev(x)?;
                }
                acc
            }
            Formula::Max(v) | Formula::Min(v) => {
                let mut acc: Option<Checked> = None;
                for x in v {
                    let y = ev(x)?;
                    acc = Some(match acc {
                        None => y,
                        Some(a) if matches!(self, Formula::Max(_)) => a.max(y),
                        Some(a) => a.min(y),
                    });
                }
                acc.unwrap_or(Checked::new(0))
            }
            Formula::Sub(a, c) => ev(a)?.saturating_sub(ev(c)?),
            Formula::Div(a, c) => {
                let d = ev(c)?;
                match (ev(a)?.get(), d.get()) {
                    (Some(x), Some(y)) if y > 0 => Checked::new(x / y),
                    _ => return Err(format!("division by zero or overflow in {self}")),
                }
            }
            Formula::CeilDiv(a, c) => {
                let d = ev(c)?;
                if d.get() == Some(0) {
                    return Err(format!("division by zero in {self}"));
                }
                ev(a)?.div_ceil(d)
            }
            Formula::Pow2(a) => ev(a)?.pow2(),
        })
    }

    fn precedence(&self) -> u8 {
        match self {
            Formula::Add(_) | Formula::Sub(..) => 1,
            Formula::Mul(_) | Formula::Div(..) => 2,
            _ => 3,
        }
    }

    fn write_operand(&self, f: &mut fmt::Formatter<'_>, parent: u8) -> fmt::Result {
        if self.precedence() < parent {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, v: &[Formula], sep: &str, p: u8| {
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                x.write_operand(f, p)?;
            }
            Ok(())
        };
        match self {
            Formula::Const(c) => write!(f, "{c}"),
            Formula::Name(n) => f.write_str(n),
            Formula::Param(n) => write!(f, "{n}?"),
            Formula::Unknown(t) => write!(f, "size({t})"),
            Formula::Mul(v) => list(f, v, " × ", 2),
            Formula::Add(v) => list(f, v, " + ", 1),
            Formula::Sub(a, b) => {
                a.write_operand(f, 1)?;
                f.write_str(" − ")?;
                b.write_operand(f, 2)
            }
            Formula::Div(a, b) => {
                a.write_operand(f, 2)?;
                f.write_str(" ÷ ")?;
                b.write_operand(f, 3)
            }
            Formula::CeilDiv(a, b) => write!(f, "cdiv({a}, {b})"),
            Formula::Pow2(a) => write!(f, "pow2({a})"),
            Formula::Max(v) => {
                f.write_str("max(")?;
                list(f, v, ", ", 0)?;
                f.write_str(")")
            }
            Formula::Min(v) => {
                f.write_str("min(")?;
                list(f, v, ", ", 0)?;
                f.write_str(")")
            }
        }
    }
}

impl Serialize for Formula {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Formula {
        Formula::name(s)
    }

    #[test]
    fn products_fold_constants_to_the_end_and_print_like_people_write_them() {
        let f = Formula::product(vec![
            Formula::Const(2),
            n("max_num_seqs"),
            Formula::mul(n("max_model_len"), Formula::Const(2)),
        ]);
        assert_eq!(f.to_string(), "max_num_seqs × max_model_len × 4");
        let g = Formula::mul(Formula::sum(vec![n("a"), Formula::Const(1)]), n("b"));
        assert_eq!(g.to_string(), "(a + 1) × b");
        assert_eq!(Formula::mul(n("a"), Formula::Const(0)), Formula::Const(0));
    }

    #[test]
    fn evaluation_is_checked_and_names_what_is_missing() {
        let f = Formula::product(vec![n("r"), n("l"), Formula::Const(4)]);
        let mut b = Bindings::new();
        assert_eq!(f.eval(&b).unwrap_err(), "r");
        b.insert("r".into(), 256);
        b.insert("l".into(), 5120);
        assert_eq!(f.eval(&b).unwrap().get(), Some(5_242_880));
        b.insert("l".into(), u64::MAX);
        assert!(f.eval(&b).unwrap().is_too_large());
        let p = Formula::pow2(Formula::sum(vec![n("r"), Formula::Const(1)]));
        b.insert("r".into(), 100);
        assert_eq!(p.eval(&b).unwrap().get(), Some(128));
        let d = Formula::div(n("r"), n("zero"));
        b.insert("zero".into(), 0);
        assert!(d.eval(&b).is_err());
    }

    #[test]
    fn substitution_refolds() {
        let f = Formula::mul(Formula::Param("size".into()), Formula::Const(4));
        let g = f.substitute(&|x| match x {
            Formula::Param(p) if p == "size" => Some(Formula::Const(8)),
            _ => None,
        });
        assert_eq!(g, Formula::Const(32));
        assert!(f.has_params() && !g.has_params());
    }
}
