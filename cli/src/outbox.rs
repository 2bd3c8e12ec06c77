//! `billing outbox list|requeue`: the outbox items the relay set aside (unreadable, or refused
//! by SQS for good), and putting them back for the relay once the cause is fixed.

use billing::app::App;
use billing::ports::{BillingStore, Clock, SystemClock};
use billing::relay::{self, Requeue};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Items set aside, oldest first, one JSON line each: id, reason, set_aside_at. Never the
    /// message.
    List,
    /// Put set-aside items back in the pending outbox, whole; `billing relay --once` (or the
    /// stream relay's next sweep) sends them. One the queue still refuses is set aside again.
    Requeue(RequeueArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RequeueArgs {
    /// The set-aside item (its message id, as `outbox list` prints it).
    #[arg(value_name = "ID")]
    id: Option<String>,
    /// Every set-aside item.
    #[arg(long)]
    all: bool,
}

pub async fn command(app: &App, cmd: OutboxCommand) -> Result<(), String> {
    match cmd {
        OutboxCommand::List => {
            let items = app
                .store
                .unreadable_outbox(1000)
                .await
                .map_err(|e| e.to_string())?;
            for item in items {
                println!(
                    "{}",
                    serde_json::to_string(&item).map_err(|e| e.to_string())?
                );
            }
            Ok(())
        }
        OutboxCommand::Requeue(args) => {
            let which = match (args.all, args.id) {
                (true, _) => Requeue::All,
                (false, Some(id)) => Requeue::One(id),
                // The argument group requires one of them; kept as an error, not a panic.
                (false, None) => return Err("requeue takes --all or an ID".into()),
            };
            let requeued = relay::requeue(app.store.as_ref(), &which, SystemClock.now())
                .await
                .map_err(|e| e.to_string())?;
            for id in &requeued {
                println!("{id}: pending again");
            }
            match (which, requeued.len()) {
                (Requeue::One(id), 0) => Err(format!("{id} is not set aside")),
                (_, n) => {
                    println!("requeued {n}; run billing relay --once to send them");
                    Ok(())
                }
            }
        }
    }
}
