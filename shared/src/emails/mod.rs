//! Customer emails (issue 10), the rendering half: the kinds and their settings (`kinds`),
//! amounts by currency (`money`), what one email needs (`context`), whether the
//! action-required email goes out (`decide`), and its subject, text and HTML (`render`). All
//! pure; sending (the queue, SES, sending each email once) is the next piece of work.

pub mod context;
pub mod decide;
pub mod kinds;
pub mod money;
pub mod render;
