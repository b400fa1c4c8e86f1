//! A host's live meters packed small while nothing arrives for it.
//!
//! The collector keeps every host it hears from in memory. Decoded, a
//! typical host (about 50 meters with process and disk tables) takes about
//! 10 KB. Packed as its changes against the last stored record (which the
//! parked writer keeps encoded anyway) plus each meter's age, it takes a
//! few hundred bytes, so a million hosts fit in a couple of gigabytes. Only
//! hosts with datagrams in flight stay decoded.

use crate::db::delta::{self, DeltaError};
use crate::model::binary::{decode_sample_into, put_sample, put_varint, PayloadReader};
use crate::model::HostMeters;
use std::cell::RefCell;

thread_local! {
    /// Each thread's buffers for a body and for ages being packed.
    static BODY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static AGES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Packed meters of one host, in one allocation.
pub struct Packed {
    /// A delta body against the base, or a whole encoded sample (the
    /// first `split` bytes); then per meter, in name order, `newest -
    /// updated` as varints.
    bytes: Box<[u8]>,
    split: u32,
    full: bool,
    /// Newest update time of any meter.
    newest: i64,
}

impl Packed {
    /// Pack `meters`, as changes against `base` when both have the same
    /// meter names.
    pub fn pack(meters: &HostMeters, base: Option<&HostMeters>) -> Packed {
        BODY.with_borrow_mut(|body| {
            body.clear();
            let full = !base.is_some_and(|b| delta::encode(b, meters, body));
            let newest = newest(meters);
            if full {
                body.clear();
                put_sample(body, newest, meters);
            }
            Packed::with_body(meters, newest, body, full)
        })
    }

    /// Pack `meters` that are their own base (just stored): no changes,
    /// only their ages, and nothing to compare.
    pub fn as_base(meters: &HostMeters) -> Packed {
        BODY.with_borrow_mut(|body| {
            body.clear();
            delta::unchanged(meters.len(), body);
            Packed::with_body(meters, newest(meters), body, false)
        })
    }

    /// One exact-sized allocation of `body` and the meters' ages (built
    /// in reused buffers: a cycle packs every host).
    fn with_body(meters: &HostMeters, newest: i64, body: &[u8], full: bool) -> Packed {
        AGES.with_borrow_mut(|ages| {
            ages.clear();
            for (_, m) in meters.iter() {
                put_varint(ages, newest.saturating_sub(m.updated).max(0) as u64);
            }
            let mut bytes = Vec::with_capacity(body.len() + ages.len());
            bytes.extend_from_slice(body);
            bytes.extend_from_slice(ages);
            Packed {
                bytes: bytes.into_boxed_slice(),
                // A body is far below 4 GB (a sample's meters are bounded).
                split: u32::try_from(body.len()).unwrap_or(u32::MAX),
                full,
                newest,
            }
        })
    }

    fn body(&self) -> &[u8] {
        self.bytes.get(..self.split as usize).unwrap_or_default()
    }

    fn ages(&self) -> &[u8] {
        self.bytes.get(self.split as usize..).unwrap_or_default()
    }

    /// The meters back, with their update times; `base` must be the one
    /// they were packed against.
    pub fn unpack(&self, base: Option<&HostMeters>) -> Result<HostMeters, DeltaError> {
        let mut meters = HostMeters::new();
        self.unpack_into(base, &mut meters)?;
        Ok(meters)
    }

    /// [`Packed::unpack`] into `meters`, reusing its buffers.
    pub fn unpack_into(
        &self,
        base: Option<&HostMeters>,
        meters: &mut HostMeters,
    ) -> Result<(), DeltaError> {
        match (self.full, base) {
            (true, _) => {
                decode_sample_into(meters, self.body())?;
            }
            (false, Some(base)) => {
                meters.clone_from(base);
                delta::apply(meters, self.body(), self.newest)?;
            }
            (false, None) => return Err(DeltaError::Inconsistent("packed without its base")),
        }
        let mut ages = PayloadReader::bare(self.ages());
        for i in 0..meters.len() {
            let age = ages.read_varint()?;
            if let Some(m) = meters.nth_mut(i) {
                m.updated = self.newest.saturating_sub(age as i64);
            }
        }
        Ok(())
    }

    /// The changes against the base, when packed as changes (not whole).
    pub fn changes(&self) -> Option<&[u8]> {
        (!self.full).then(|| self.body())
    }

    /// Heap bytes held (for the memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// Newest update time of any meter.
fn newest(meters: &HostMeters) -> i64 {
    meters.iter().map(|(_, m)| m.updated).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FakeHost;
    use crate::model::binary::encode_sample;
    use crate::model::{MeterName, MeterValue};

    fn same(a: &HostMeters, b: &HostMeters) {
        assert_eq!(a.len(), b.len());
        for ((na, ma), (nb, mb)) in a.iter().zip(b.iter()) {
            assert_eq!(na, nb);
            assert_eq!(ma.updated, mb.updated, "{na}");
            assert_eq!(
                encode_sample(0, &one(na, &ma.value)),
                encode_sample(0, &one(nb, &mb.value))
            );
        }
    }

    fn one(name: &MeterName, value: &MeterValue) -> HostMeters {
        let mut m = HostMeters::new();
        m.set(name.clone(), value.clone(), 0).unwrap();
        m
    }

    #[test]
    fn round_trips_with_and_without_a_base() {
        let mut fake = FakeHost::new(3);
        let base = fake.sample(1_000_000);
        let mut now = fake.sample(1_000_060);
        // A slow meter keeps an older time.
        now.nth_mut(0).unwrap().updated = 999_700;
        let with_base = Packed::pack(&now, Some(&base));
        let alone = Packed::pack(&now, None);
        assert!(!with_base.full && alone.full);
        assert!(with_base.heap_bytes() * 3 < alone.heap_bytes());
        same(&with_base.unpack(Some(&base)).unwrap(), &now);
        same(&alone.unpack(None).unwrap(), &now);
        assert!(with_base.unpack(None).is_err());
        // A new meter: names differ from the base, so it packs whole.
        let name = MeterName::new("extra/one").unwrap();
        now.set(name, MeterValue::Null, 1_000_060).unwrap();
        let grown = Packed::pack(&now, Some(&base));
        assert!(grown.full);
        same(&grown.unpack(Some(&base)).unwrap(), &now);
        // Just stored: its own base (as the stored record decodes), and
        // the same as packing against itself.
        let (_, record) =
            crate::model::binary::decode_sample(&encode_sample(1_000_060, &now)).unwrap();
        let own = Packed::as_base(&now);
        assert_eq!(own.body(), Packed::pack(&now, Some(&now)).body());
        let mut into = fake.sample(5);
        own.unpack_into(Some(&record), &mut into).unwrap();
        same(&into, &now);
    }
}
