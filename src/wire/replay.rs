//! Sliding-window replay protection (in the manner of IPsec, RFC 4303).

use super::Rejection;

/// Serials this far below the highest accepted one are still accepted once.
pub const REPLAY_WINDOW: u64 = 128;

/// Which serials of a session were accepted: the highest, and a bitmap of
/// the [`REPLAY_WINDOW`] serials below it. Datagrams reordered by the
/// network are accepted once; duplicates and anything older are refused.
///
/// The bitmap is kept as two `u64` halves: a `u128` field would align the
/// window, and every session holding one, to 16 bytes (the collector keeps
/// a session per host: at a million hosts the padding alone was about 48
/// MB of its session table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    top: u64,
    seen: [u64; 2],
}

impl ReplayWindow {
    /// A window that has accepted nothing.
    pub fn new() -> ReplayWindow {
        ReplayWindow::default()
    }

    fn seen(&self) -> u128 {
        u128::from(self.seen[0]) | (u128::from(self.seen[1]) << 64)
    }

    fn set_seen(&mut self, seen: u128) {
        self.seen = [seen as u64, (seen >> 64) as u64];
    }

    /// The highest serial accepted so far (0 for none).
    pub fn highest(&self) -> u64 {
        self.top
    }

    /// Would `serial` be accepted? Does not change the window.
    pub fn check(&self, serial: u64) -> Result<(), Rejection> {
        if serial == 0 {
            return Err(Rejection::TooOld);
        }
        if serial > self.top {
            return Ok(());
        }
        let behind = self.top - serial;
        if behind >= REPLAY_WINDOW {
            return Err(Rejection::TooOld);
        }
        if self.seen() & (1u128 << behind) != 0 {
            return Err(Rejection::Replay);
        }
        Ok(())
    }

    /// Record `serial` as accepted; call only after [`ReplayWindow::check`]
    /// passed and the datagram's tag verified.
    pub fn accept(&mut self, serial: u64) {
        if serial > self.top {
            let shift = serial - self.top;
            let seen = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.seen() << shift
            };
            self.set_seen(seen | 1);
            self.top = serial;
        } else {
            let behind = self.top - serial;
            if behind < REPLAY_WINDOW {
                self.set_seen(self.seen() | (1u128 << behind));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(w: &mut ReplayWindow, s: u64) -> Result<(), Rejection> {
        w.check(s)?;
        w.accept(s);
        Ok(())
    }

    #[test]
    fn order_reorder_replay_and_age() {
        let mut w = ReplayWindow::new();
        assert_eq!(take(&mut w, 0), Err(Rejection::TooOld));
        assert_eq!(take(&mut w, 5), Ok(()));
        assert_eq!(take(&mut w, 5), Err(Rejection::Replay));
        assert_eq!(take(&mut w, 3), Ok(()));
        assert_eq!(take(&mut w, 3), Err(Rejection::Replay));
        assert_eq!(take(&mut w, 200), Ok(()));
        assert_eq!(take(&mut w, 4), Err(Rejection::TooOld));
        assert_eq!(take(&mut w, 200 - REPLAY_WINDOW + 1), Ok(()));
        assert_eq!(take(&mut w, 200 - REPLAY_WINDOW), Err(Rejection::TooOld));
        assert_eq!(take(&mut w, u64::MAX), Ok(()));
        assert_eq!(w.highest(), u64::MAX);
    }
}
