//! Test machinery for the email consumer (feature `testing` only): a mailer that keeps what it
//! was asked to send, and one that answers scripted SES failures before passing on.

use crate::emails::render::RenderedEmail;
use crate::emails::send::{Mailer, OutgoingEmail, SendError};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps every email it accepts (recipient, subject) and answers a message id.
#[derive(Default)]
pub struct InMemoryMailer {
    sent: Mutex<Vec<(String, String)>>,
    bodies: Mutex<Vec<RenderedEmail>>,
    next: AtomicU64,
}

impl InMemoryMailer {
    /// (recipient, subject) of each accepted email, in order.
    pub fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The rendered email (subject, text, HTML) of each accepted email, in order.
    pub fn bodies(&self) -> Vec<RenderedEmail> {
        self.bodies.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Mailer for InMemoryMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut sent) = self.sent.lock() {
            sent.push((email.to.as_str().to_owned(), email.content.subject.clone()));
        }
        if let Ok(mut bodies) = self.bodies.lock() {
            bodies.push(email.content.clone());
        }
        Ok(format!("mem-{id}"))
    }
}

/// Answers the scripted failures first (one per call), then passes calls to `inner`; each call
/// first waits `delay` (to let racing consumers overlap).
pub struct FaultyMailer {
    pub inner: Arc<dyn Mailer>,
    script: Mutex<VecDeque<SendError>>,
    pub delay: Duration,
    calls: AtomicU64,
}

impl FaultyMailer {
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self {
            inner,
            script: Mutex::default(),
            delay: Duration::ZERO,
            calls: AtomicU64::new(0),
        }
    }

    pub fn fail_next(&self, error: SendError) {
        if let Ok(mut s) = self.script.lock() {
            s.push_back(error);
        }
    }

    /// Calls made, failed or not.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Mailer for FaultyMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let scripted = self.script.lock().ok().and_then(|mut s| s.pop_front());
        match scripted {
            Some(error) => Err(error),
            None => self.inner.send(email).await,
        }
    }
}
