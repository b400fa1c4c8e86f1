//! Meter values: null, scalars and typed arrays of int, frac or string.

use std::fmt;

/// Longest string value, in bytes of UTF-8 (the original allowed 127).
pub const MAX_STRING_LEN: usize = 255;
/// Most elements in one array meter (the original allowed 29).
pub const MAX_ARRAY_LEN: usize = 1024;

/// The element type of a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Signed 64-bit integer.
    Int,
    /// IEEE-754 double, stored without loss.
    Frac,
    /// UTF-8 text of at most [`MAX_STRING_LEN`] bytes.
    Str,
}

impl Kind {
    /// The type name users see in meter definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Int => "integer",
            Kind::Frac => "frac",
            Kind::Str => "string",
        }
    }
}

/// One owned element.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// An integer.
    Int(i64),
    /// A fraction.
    Frac(f64),
    /// A string.
    Str(String),
}

/// One borrowed element, as read from a meter or a decoder without copying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarRef<'a> {
    /// An integer.
    Int(i64),
    /// A fraction.
    Frac(f64),
    /// A string.
    Str(&'a str),
}

impl Scalar {
    /// Borrow this element.
    pub fn as_ref(&self) -> ScalarRef<'_> {
        match self {
            Scalar::Int(i) => ScalarRef::Int(*i),
            Scalar::Frac(f) => ScalarRef::Frac(*f),
            Scalar::Str(s) => ScalarRef::Str(s),
        }
    }

    /// The element's type.
    pub fn kind(&self) -> Kind {
        self.as_ref().kind()
    }
}

impl ScalarRef<'_> {
    /// The element's type.
    pub fn kind(&self) -> Kind {
        match self {
            ScalarRef::Int(_) => Kind::Int,
            ScalarRef::Frac(_) => Kind::Frac,
            ScalarRef::Str(_) => Kind::Str,
        }
    }

    /// The numeric value of an int or frac; watchers compare ints and fracs
    /// with each other (the original read an int meter as 0.0 for a frac
    /// watcher).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ScalarRef::Int(i) => Some(*i as f64),
            ScalarRef::Frac(f) => Some(*f),
            ScalarRef::Str(_) => None,
        }
    }

    /// Copy into an owned element.
    pub fn to_owned(&self) -> Scalar {
        match self {
            ScalarRef::Int(i) => Scalar::Int(*i),
            ScalarRef::Frac(f) => Scalar::Frac(*f),
            ScalarRef::Str(s) => Scalar::Str((*s).to_string()),
        }
    }
}

/// A typed array; all elements share one kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// Integers.
    Int(Vec<i64>),
    /// Fractions.
    Frac(Vec<f64>),
    /// Strings.
    Str(Vec<String>),
}

impl Array {
    /// An empty array of `kind`.
    pub fn empty(kind: Kind) -> Array {
        match kind {
            Kind::Int => Array::Int(Vec::new()),
            Kind::Frac => Array::Frac(Vec::new()),
            Kind::Str => Array::Str(Vec::new()),
        }
    }

    /// An array of `len` zero values (0, 0.0 or ""), the filler for missing
    /// table cells and for parts of a split array that never arrived.
    pub fn zeroed(kind: Kind, len: usize) -> Array {
        match kind {
            Kind::Int => Array::Int(vec![0; len]),
            Kind::Frac => Array::Frac(vec![0.0; len]),
            Kind::Str => Array::Str(vec![String::new(); len]),
        }
    }

    /// Element type.
    pub fn kind(&self) -> Kind {
        match self {
            Array::Int(_) => Kind::Int,
            Array::Frac(_) => Kind::Frac,
            Array::Str(_) => Kind::Str,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::Int(v) => v.len(),
            Array::Frac(v) => v.len(),
            Array::Str(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Option<ScalarRef<'_>> {
        match self {
            Array::Int(v) => v.get(i).map(|x| ScalarRef::Int(*x)),
            Array::Frac(v) => v.get(i).map(|x| ScalarRef::Frac(*x)),
            Array::Str(v) => v.get(i).map(|x| ScalarRef::Str(x)),
        }
    }

    /// Overwrite element `i` with a value of the same kind; false when the
    /// kind differs or `i` is out of range.
    pub fn set(&mut self, i: usize, value: ScalarRef<'_>) -> bool {
        match (self, value) {
            (Array::Int(v), ScalarRef::Int(x)) if i < v.len() => v[i] = x,
            (Array::Frac(v), ScalarRef::Frac(x)) if i < v.len() => v[i] = x,
            (Array::Str(v), ScalarRef::Str(x)) if i < v.len() => {
                v[i].clear();
                v[i].push_str(x);
            }
            _ => return false,
        }
        true
    }

    /// Append a value of the same kind; false when the kind differs.
    pub fn push(&mut self, value: ScalarRef<'_>) -> bool {
        match (self, value) {
            (Array::Int(v), ScalarRef::Int(x)) => v.push(x),
            (Array::Frac(v), ScalarRef::Frac(x)) => v.push(x),
            (Array::Str(v), ScalarRef::Str(x)) => v.push(x.to_string()),
            _ => return false,
        }
        true
    }
}

/// What one meter holds.
#[derive(Debug, PartialEq)]
pub enum MeterValue {
    /// No value (the original's count 30).
    Null,
    /// A single element.
    Scalar(Scalar),
    /// An array, possibly empty (the original's count 31).
    Array(Array),
}

impl Clone for MeterValue {
    fn clone(&self) -> MeterValue {
        match self {
            MeterValue::Null => MeterValue::Null,
            MeterValue::Scalar(s) => MeterValue::Scalar(s.clone()),
            MeterValue::Array(a) => MeterValue::Array(a.clone()),
        }
    }

    /// Reuses string and vector buffers when the shapes match: keeping a
    /// copy of a host's previous sample then costs no allocation.
    fn clone_from(&mut self, source: &MeterValue) {
        match (self, source) {
            (MeterValue::Scalar(Scalar::Str(a)), MeterValue::Scalar(Scalar::Str(b))) => {
                a.clone_from(b)
            }
            (MeterValue::Array(Array::Str(a)), MeterValue::Array(Array::Str(b))) => a.clone_from(b),
            (MeterValue::Array(Array::Int(a)), MeterValue::Array(Array::Int(b))) => a.clone_from(b),
            (MeterValue::Array(Array::Frac(a)), MeterValue::Array(Array::Frac(b))) => {
                a.clone_from(b)
            }
            (a, b) => *a = b.clone(),
        }
    }
}

impl MeterValue {
    /// The element type; `None` for null.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            MeterValue::Null => None,
            MeterValue::Scalar(s) => Some(s.kind()),
            MeterValue::Array(a) => Some(a.kind()),
        }
    }

    /// Element `i`: a scalar is its own element 0.
    pub fn element(&self, i: usize) -> Option<ScalarRef<'_>> {
        match self {
            MeterValue::Null => None,
            MeterValue::Scalar(s) if i == 0 => Some(s.as_ref()),
            MeterValue::Scalar(_) => None,
            MeterValue::Array(a) => a.get(i),
        }
    }

    /// Number of elements (a scalar has one, null none).
    pub fn element_count(&self) -> usize {
        match self {
            MeterValue::Null => 0,
            MeterValue::Scalar(_) => 1,
            MeterValue::Array(a) => a.len(),
        }
    }

    /// Check the model's limits (string and array lengths, finite fracs).
    pub fn check_limits(&self) -> Result<(), LimitError> {
        let check_str = |s: &str| {
            if s.len() > MAX_STRING_LEN {
                Err(LimitError::StringTooLong(s.len()))
            } else {
                Ok(())
            }
        };
        let check_frac = |f: f64| {
            if f.is_finite() {
                Ok(())
            } else {
                Err(LimitError::NotFinite)
            }
        };
        match self {
            MeterValue::Null => Ok(()),
            MeterValue::Scalar(Scalar::Str(s)) => check_str(s),
            MeterValue::Scalar(Scalar::Frac(f)) => check_frac(*f),
            MeterValue::Scalar(Scalar::Int(_)) => Ok(()),
            MeterValue::Array(a) => {
                if a.len() > MAX_ARRAY_LEN {
                    return Err(LimitError::ArrayTooLong(a.len()));
                }
                match a {
                    Array::Str(v) => v.iter().try_for_each(|s| check_str(s)),
                    Array::Frac(v) => v.iter().try_for_each(|f| check_frac(*f)),
                    Array::Int(_) => Ok(()),
                }
            }
        }
    }
}

/// A value beyond what the model can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// A string longer than [`MAX_STRING_LEN`] bytes.
    StringTooLong(usize),
    /// An array with more than [`MAX_ARRAY_LEN`] elements.
    ArrayTooLong(usize),
    /// A fraction that is infinite or not a number.
    NotFinite,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::StringTooLong(n) => {
                write!(f, "string of {n} bytes is longer than {MAX_STRING_LEN}")
            }
            LimitError::ArrayTooLong(n) => {
                write!(f, "array of {n} elements is longer than {MAX_ARRAY_LEN}")
            }
            LimitError::NotFinite => write!(f, "fraction is not a finite number"),
        }
    }
}

impl std::error::Error for LimitError {}
