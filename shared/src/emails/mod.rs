//! Customer emails (issue 10), the rendering half: the kinds and their settings (`kinds`),
//! amounts by currency (`money`), what one email needs (`context`), whether the
//! action-required email goes out (`decide`), and its subject, text and HTML (`render`). All
//! pure. The sending half: the job the outbox carries (`job`), the claim and sent-email record
//! (`records`), the consumer that sends through SES once (`send`) and the bounce and complaint
//! handler (`bounces`).

pub mod bounces;
pub mod brand;
pub mod context;
pub mod decide;
pub mod job;
pub mod kinds;
pub mod locale;
pub mod money;
pub mod records;
pub mod render;
pub mod send;
pub mod settings;
pub mod templates;
pub mod variables;
