//! Drift: every Stripe fixture, 2018 to basil, is accepted and understood (never parked).

use crate::helpers::*;
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::translate::family_of;
use http::StatusCode;
use std::path::Path;

pub fn stripe_fixtures() -> Vec<(String, Vec<u8>)> {
    let root = fixture_path("stripe");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fixtures dir") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("version dir") {
            let path = file.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) == Some("json") {
                let rel = path
                    .strip_prefix(&root)
                    .unwrap_or(Path::new(""))
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_stripe_fixture_is_accepted_and_none_is_parked() {
    let fixtures = stripe_fixtures();
    assert!(
        fixtures.len() >= 70,
        "expected the whole fixture set, found {}",
        fixtures.len()
    );
    let mut applied = 0;
    for (name, body) in &fixtures {
        let env = Envelope::parse(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Each fixture goes to a fresh app in its own mode, so shared upstream ids do not collide.
        let app = spawn_memory(env.livemode.unwrap_or(false));
        let family = family_of(&env.event_type);
        let (status, json) = app.post(family, body).await;
        assert_eq!(status, StatusCode::OK, "{name}: {json}");
        let state = json["state"].as_str().unwrap_or_default();
        assert!(
            matches!(state, "applied" | "ignored" | "stale"),
            "{name}: {json}"
        );
        if env.event_type.starts_with("customer.subscription.") {
            assert_eq!(
                state, "applied",
                "{name}: a subscription event must change the model"
            );
        }
        if state == "applied" {
            applied += 1;
        }
    }
    assert!(applied >= 20, "only {applied} fixtures changed the model");
}

#[tokio::test]
async fn basil_and_old_shapes_give_the_same_subscription_facts() {
    for dir in ["stripe/lifecycle", "stripe/lifecycle-2020"] {
        let app = spawn_memory(false);
        let mut files: Vec<_> = std::fs::read_dir(fixture_path(dir))
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        files.sort();
        for path in files.iter().take(3) {
            let body = std::fs::read(path).expect("read");
            let env = Envelope::parse(&body).expect("parse");
            let (status, json) = app.post(family_of(&env.event_type), &body).await;
            assert_eq!(status, StatusCode::OK, "{}: {json}", path.display());
            assert_eq!(json["state"], "applied", "{}: {json}", path.display());
        }
        let (_, access) = app.get("/users/user_42/access").await;
        assert_eq!(access["billing_status"], "DONE", "{dir}: {access}");
        assert_eq!(access["tier"], "pro", "{dir}: {access}");
        assert!(
            access["current_period_end"].as_i64().is_some(),
            "{dir}: period end read from either place"
        );
    }
}
