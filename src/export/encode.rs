//! Request bodies of the two target kinds, built sample by sample:
//! Prometheus remote write 1.0 (a protobuf `WriteRequest`, snappy
//! compressed) and InfluxDB line protocol.
//!
//! The remote-write messages, as the 1.0 specification defines them:
//!
//! ```text
//! WriteRequest { repeated TimeSeries timeseries = 1; }
//! TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! Label        { string name = 1; string value = 2; }
//! Sample       { double value = 1; int64 timestamp = 2; }
//! ```
//!
//! Only varints, length-delimited fields and doubles are needed, and
//! every length is known before it is written, so nothing is encoded
//! twice.

use super::series::{sanitize, Row};
use super::snappy;

/// The labels of every series of one host.
#[derive(Debug, Clone, Copy)]
pub struct HostLabels<'a> {
    /// The tenant's UUID.
    pub tenant: &'a str,
    /// The host's UUID.
    pub host: &'a str,
    /// The host's name (`""`: none).
    pub hostname: &'a str,
}

/// The wire format of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus remote write 1.0.
    RemoteWrite,
    /// InfluxDB line protocol.
    Influx,
}

impl Format {
    /// The request headers the format needs.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Format::RemoteWrite => &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ],
            Format::Influx => &[("Content-Type", "text/plain; charset=utf-8")],
        }
    }
}

/// One request body in the making.
#[derive(Debug)]
pub struct Batch {
    format: Format,
    raw: Vec<u8>,
    samples: usize,
    /// A row's encoded labels, and the metric name being written.
    scratch: Vec<u8>,
    name: String,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A `Label` message, as field 1 of a TimeSeries.
fn label(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x0a);
    varint(out, (field_len(name.len()) + field_len(value.len())) as u64);
    bytes_field(out, 0x0a, name.as_bytes());
    bytes_field(out, 0x12, value.as_bytes());
}

fn bytes_field(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Influx escaping: `\` before each of `chars`.
fn escaped(out: &mut Vec<u8>, text: &str, chars: &[u8]) {
    for b in text.bytes() {
        if chars.contains(&b) || b == b'\\' {
            out.push(b'\\');
        }
        if b == b'\n' {
            out.push(b' ');
        } else {
            out.push(b);
        }
    }
}

impl Batch {
    /// An empty body of `format`.
    pub fn new(format: Format) -> Batch {
        Batch {
            format,
            raw: Vec::with_capacity(64 << 10),
            samples: 0,
            scratch: Vec::new(),
            name: String::new(),
        }
    }

    /// Samples added so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Add `fields` of `row` (of one host) at `ms` milliseconds.
    pub fn add(&mut self, host: &HostLabels<'_>, row: &Row<'_>, fields: &[(&str, f64)], ms: i64) {
        // Rows are nearly always all finite: copied only when not.
        let finite: Vec<(&str, f64)>;
        let fields = if fields.iter().all(|(_, v)| v.is_finite()) {
            fields
        } else {
            finite = fields
                .iter()
                .copied()
                .filter(|(_, v)| v.is_finite())
                .collect();
            &finite
        };
        if fields.is_empty() {
            return;
        }
        match self.format {
            Format::RemoteWrite => self.row_series(host, row, fields, ms),
            Format::Influx => self.line(host, row, fields, ms),
        }
        self.samples += fields.len();
    }

    /// One TimeSeries per field: the row's labels (all but `__name__`)
    /// are sorted and encoded once, each field adds its name and sample.
    fn row_series(
        &mut self,
        host: &HostLabels<'_>,
        row: &Row<'_>,
        fields: &[(&str, f64)],
        ms: i64,
    ) {
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(3 + row.labels.len());
        labels.extend([
            ("host", host.host),
            ("hostname", host.hostname),
            ("tenant", host.tenant),
        ]);
        labels.extend(row.labels.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        labels.retain(|(_, v)| !v.is_empty());
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let split = labels.partition_point(|(k, _)| *k < "__name__");
        self.scratch.clear();
        let mut before = 0;
        for (i, (k, v)) in labels.iter().enumerate() {
            if i == split {
                before = self.scratch.len();
            }
            label(&mut self.scratch, k, v);
        }
        if split == labels.len() {
            before = self.scratch.len();
        }
        self.name.clear();
        self.name.push_str("opticon_");
        if !row.group.is_empty() {
            self.name.push_str(&sanitize(row.group));
            self.name.push('_');
        }
        let prefix = self.name.len();
        let sample = 9 + 1 + varint_len(ms as u64);
        for (leaf, value) in fields {
            self.name.truncate(prefix);
            self.name.push_str(&sanitize(leaf));
            let name_label = field_len(field_len(8) + field_len(self.name.len()));
            let series = self.scratch.len() + name_label + field_len(sample);
            let out = &mut self.raw;
            out.push(0x0a);
            varint(out, series as u64);
            out.extend_from_slice(&self.scratch[..before]);
            label(out, "__name__", &self.name);
            out.extend_from_slice(&self.scratch[before..]);
            out.push(0x12);
            varint(out, sample as u64);
            out.push(0x09);
            out.extend_from_slice(&value.to_le_bytes());
            out.push(0x10);
            varint(out, ms as u64);
        }
    }

    fn line(&mut self, host: &HostLabels<'_>, row: &Row<'_>, fields: &[(&str, f64)], ms: i64) {
        use std::io::Write;
        let out = &mut self.raw;
        out.extend_from_slice(b"opticon");
        if !row.group.is_empty() {
            out.push(b'_');
            escaped(out, &sanitize(row.group), b", ");
        }
        let mut tags: Vec<(&str, &str)> = vec![
            ("host", host.host),
            ("hostname", host.hostname),
            ("tenant", host.tenant),
        ];
        tags.extend(row.labels.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        tags.retain(|(_, v)| !v.is_empty());
        tags.sort_unstable();
        for (k, v) in tags {
            out.push(b',');
            escaped(out, k, b",= ");
            out.push(b'=');
            escaped(out, v, b",= ");
        }
        for (i, (leaf, value)) in fields.iter().enumerate() {
            out.push(if i == 0 { b' ' } else { b',' });
            escaped(out, &sanitize(leaf), b",= ");
            let _ = write!(out, "={value}");
        }
        let _ = writeln!(out, " {}", ms.saturating_mul(1_000_000));
    }

    /// The finished body (compressed where the format says so), leaving
    /// the batch empty.
    pub fn finish(&mut self) -> Vec<u8> {
        self.samples = 0;
        match self.format {
            Format::RemoteWrite => {
                let mut body = Vec::with_capacity(self.raw.len() / 4 + 16);
                snappy::compress(&self.raw, &mut body);
                self.raw.clear();
                body
            }
            Format::Influx => std::mem::replace(&mut self.raw, Vec::with_capacity(64 << 10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn row() -> Row<'static> {
        Row {
            group: "df",
            labels: vec![(Cow::Borrowed("mount"), Cow::Borrowed("/ x"))],
            fields: vec![("pused", 40.5), ("size", 7.0)],
        }
    }

    const HOST: HostLabels<'static> = HostLabels {
        tenant: "t",
        host: "h",
        hostname: "",
    };

    #[test]
    fn influx_lines_escape_and_skip_empty_tags() {
        let mut b = Batch::new(Format::Influx);
        let r = row();
        b.add(&HOST, &r, &r.fields, 1500);
        assert_eq!(b.samples(), 2);
        assert_eq!(
            String::from_utf8(b.finish()).unwrap(),
            "opticon_df,host=h,mount=/\\ x,tenant=t pused=40.5,size=7 1500000000\n"
        );
    }

    #[test]
    fn remote_write_series_layout() {
        let mut b = Batch::new(Format::RemoteWrite);
        let r = row();
        b.add(&HOST, &r, &r.fields[..1], 1500);
        let raw = snappy::decompress(&b.finish(), 1 << 20).unwrap();
        // One TimeSeries: four labels (__name__, host, mount, tenant),
        // one sample.
        assert_eq!(raw[0], 0x0a);
        assert_eq!(raw[1] as usize, raw.len() - 2);
        assert_eq!(&raw[4..6], b"\x0a\x08");
        assert_eq!(&raw[6..14], b"__name__");
        let tail = &raw[raw.len() - 14..];
        assert_eq!(tail[0..3], [0x12, 12, 0x09]);
        assert_eq!(f64::from_le_bytes(tail[3..11].try_into().unwrap()), 40.5);
        assert_eq!(tail[11..], [0x10, 0xdc, 0x0b]);
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::MAX), 10);
    }
}
