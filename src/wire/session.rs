//! The sending side of a session: id, key, serial counter.

use super::{seal_auth, seal_meter, AuthBody, AuthHeader, Rejection, ReplayWindow};
use crate::crypto::{random_bytes, random_key, SealKey, KEY_LEN};
use std::io;
use uuid::Uuid;

/// An agent's session with one collector.
///
/// The session id is random, so a restarted agent starts a new session
/// and never has to remember serials; serials start at 1 and every datagram
/// of the session (auth or meter) takes the next one, which also makes
/// every meter nonce unique under the session key.
pub struct SenderSession {
    id: u64,
    key: [u8; KEY_LEN],
    seal: SealKey,
    next_serial: u64,
}

impl SenderSession {
    /// A new session with a random id and key.
    pub fn new() -> io::Result<SenderSession> {
        let mut id = [0u8; 8];
        random_bytes(&mut id)?;
        let key = random_key()?;
        Ok(SenderSession {
            id: u64::from_be_bytes(id),
            key,
            seal: SealKey::new(&key),
            next_serial: 1,
        })
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The serial the next datagram will carry.
    pub fn next_serial(&self) -> u64 {
        self.next_serial
    }

    /// Replace the session key; the next auth datagram announces it.
    pub fn rotate_key(&mut self) -> io::Result<()> {
        self.key = random_key()?;
        self.seal = SealKey::new(&self.key);
        Ok(())
    }

    fn take_serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial += 1;
        s
    }

    /// An auth datagram announcing this session and its current key.
    pub fn auth_datagram(
        &mut self,
        tenant_key: &SealKey,
        tenant: Uuid,
        host: Uuid,
        now: i64,
    ) -> io::Result<Vec<u8>> {
        let serial = self.take_serial();
        let body = AuthBody {
            host,
            session_key: self.key,
            time: now,
        };
        seal_auth(tenant_key, tenant, self.id, serial, &body)
    }

    /// Seal one sample payload as a meter datagram.
    pub fn meter_datagram(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.seal_meter_into(payload, &mut out);
        out
    }

    /// Seal one sample payload into a reused buffer.
    pub fn seal_meter_into(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let serial = self.take_serial();
        seal_meter(&self.seal, self.id, serial, payload, out);
    }
}

/// What a receiver keeps once an auth datagram opened a session.
pub struct OpenedAuth {
    /// Host the session belongs to.
    pub host: Uuid,
    /// Ready-to-use session key.
    pub key: SealKey,
    /// The session's replay window, shared by its auth and meter datagrams.
    pub window: ReplayWindow,
}

impl OpenedAuth {
    /// Open a first auth datagram for a session the receiver did not know.
    pub fn open_new(
        header: &AuthHeader<'_>,
        tenant_key: &SealKey,
        now: i64,
        max_skew: i64,
    ) -> Result<OpenedAuth, Rejection> {
        let mut window = ReplayWindow::new();
        let body = header.open(tenant_key, Some(&mut window), now, max_skew)?;
        Ok(OpenedAuth {
            host: body.host,
            key: SealKey::new(&body.session_key),
            window,
        })
    }
}
