//! Stripe Connect: two connected accounts whose lifecycles use the same customer (`cus_p`),
//! subscription (`sub_p1`, `sub_p2`), invoice and user (`user_p`) ids, and in half the cases the
//! same event ids too, delivered interleaved in any order to one service through the families'
//! Connect endpoints. Each account must end in the state the true order of its own lifecycle
//! implies (the same oracle, `expected`, and the same judge as `lifecycles_match_the_true_order`),
//! and nothing may reach the platform's own account: no customer, no user, no ledger record.

use super::*;
use billing::domain::ids::Account;
use billing::routing::Endpoint;

const ACCOUNTS: [&str; 2] = ["acct_1ConnectAlpha0001", "acct_1ConnectBravo0002"];
/// The Connect endpoints' own secret (the platform endpoints keep `SECRET`).
const CONNECT_SECRET: &str = "whsec_connect";

fn scope(account: usize) -> Provider {
    Provider::STRIPE.in_account(Account::parse(ACCOUNTS[account]).expect("an account id"))
}

/// `ev` as a Connect endpoint delivers it: the envelope names the account.
fn body_in(ev: &Ev, account: usize) -> Vec<u8> {
    let mut envelope: Value = serde_json::from_slice(&ev.body()).expect("json");
    envelope["account"] = json!(ACCOUNTS[account]);
    serde_json::to_vec(&envelope).expect("serialisable")
}

fn sign_in(events: &[Ev], account: usize) -> Vec<Signed> {
    events
        .iter()
        .map(|e| Signed::new(&e.id, e.ty, body_in(e, account), CONNECT_SECRET))
        .collect()
}

/// One service with both accounts' Stripe API answers (each account's subscriptions under its
/// own key, so a tie refetch asked in the wrong account finds the other's object or nothing).
fn connect_service(store: Arc<InMemoryBillingStore>, lifecycles: [&Lifecycle; 2]) -> Pipeline {
    let settings = settings();
    let secrets = StaticSecrets::new(
        Family::ALL
            .into_iter()
            .map(|f| {
                (
                    f.connect_endpoint(),
                    vec![WebhookSecret::new(CONNECT_SECRET)],
                )
            })
            .chain(Family::ALL.map(|f| (f.endpoint(), vec![WebhookSecret::new(SECRET)])))
            .collect::<Vec<(Endpoint, _)>>(),
    );
    let mut objects = HashMap::new();
    for (k, lifecycle) in lifecycles.iter().enumerate() {
        for sub in SUBS {
            let object = true_object(lifecycle, sub);
            if !object.is_null() {
                objects.insert(format!("{}/{sub}", ACCOUNTS[k]), object);
            }
        }
    }
    let metrics = Arc::new(Metrics::memory());
    let clock = Arc::new(FixedClock::at(SIGNED_AT));
    let provider = StripeProvider::new(Arc::new(secrets), clock.clone(), metrics.clone(), settings)
        .with_api(Arc::new(FakeStripeApi { objects }));
    Pipeline::new(store, clock, metrics, tiers()).with_provider(Arc::new(provider))
}

async fn deliver_one(service: &Pipeline, s: &Signed, endpoint: Endpoint) -> Outcome {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "stripe-signature",
        http::HeaderValue::from_str(&s.header).expect("ascii"),
    );
    service.receive(endpoint, &headers, &s.body).await
}

/// What one account ended in: its customers, its user's document and its invoices.
fn model_of(store: &InMemoryBillingStore, account: usize) -> Model {
    let provider = scope(account);
    let mut customers: Vec<_> = (store.customers().into_iter())
        .filter(|c| c.provider == provider)
        .collect();
    customers.sort_by(|a, b| a.customer.cmp(&b.customer));
    let user_id = UserId::new(USER).in_account(Account::parse(ACCOUNTS[account]).expect("id"));
    let user = store.user(&user_id).map(|doc| UserPart {
        access: doc.access,
        sources: doc.sources,
    });
    let invoices = (store.all_invoices().into_iter())
        .filter(|i| i.provider == provider)
        .collect();
    Model {
        customers,
        user,
        invoices,
    }
}

/// Delivers `order` (account, event) once each, then checks the ledger and returns each
/// account's model.
async fn run_two(
    signed: &[Vec<Signed>; 2],
    order: &[(usize, usize)],
    lifecycles: [&Lifecycle; 2],
) -> Result<[Model; 2], String> {
    let store = Arc::new(InMemoryBillingStore::new());
    let service = connect_service(store.clone(), lifecycles);
    for &(account, event) in order {
        let s = &signed[account][event];
        match deliver_one(&service, s, s.home.connect_endpoint()).await {
            Outcome::Recorded { state, .. } if state != LedgerState::Parked => {}
            other => return Err(format!("{} of {}: {other:?}", s.id, ACCOUNTS[account])),
        }
    }
    for (account, list) in signed.iter().enumerate() {
        for s in list {
            let id = EventId::new(s.id.clone());
            let scoped = store.ledger(scope(account), &id).await;
            if !matches!(scoped, Ok(Some(_))) {
                return Err(format!("{} is not in {}'s ledger", s.id, ACCOUNTS[account]));
            }
            if !matches!(store.ledger(Provider::STRIPE, &id).await, Ok(None)) {
                return Err(format!("{} reached the platform's ledger", s.id));
            }
        }
    }
    if store
        .customers()
        .iter()
        .any(|c| c.provider == Provider::STRIPE)
        || store.user(&UserId::new(USER)).is_some()
    {
        return Err("a connected account's event reached the platform's account".into());
    }
    Ok([model_of(&store, 0), model_of(&store, 1)])
}

/// The second account's lifecycle takes the first one's event ids, position by position: the
/// same ids, other events.
fn with_ids_of(b: &Lifecycle, a: &Lifecycle) -> Lifecycle {
    let mut b = b.clone();
    for (ev, id) in b
        .events
        .iter_mut()
        .zip(a.events.iter().map(|e| e.id.clone()))
    {
        ev.id = id;
    }
    b
}

/// An interleaving: a shuffle of every (account, position) slot, the empty ones dropped.
fn interleave(shuffle: &[usize], lengths: [usize; 2]) -> Vec<(usize, usize)> {
    shuffle
        .iter()
        .map(|&slot| (slot / MAX_EVENTS, slot % MAX_EVENTS))
        .filter(|&(account, event)| event < lengths[account])
        .collect()
}

fn check_two(
    rt: &tokio::runtime::Runtime,
    lifecycles: [&Lifecycle; 2],
    shuffles: &[Vec<usize>],
) -> Result<(), TestCaseError> {
    let signed = [
        sign_in(&lifecycles[0].events, 0),
        sign_in(&lifecycles[1].events, 1),
    ];
    let lengths = [signed[0].len(), signed[1].len()];
    let in_order: Vec<(usize, usize)> = (0..lengths[0])
        .map(|e| (0, e))
        .chain((0..lengths[1]).map(|e| (1, e)))
        .collect();
    let orders = std::iter::once(in_order).chain(shuffles.iter().map(|s| interleave(s, lengths)));
    for order in orders {
        let models = rt
            .block_on(run_two(&signed, &order, lifecycles))
            .map_err(TestCaseError::fail)?;
        for (k, model) in models.into_iter().enumerate() {
            let run = Run { model, ties: 0 };
            judge(lifecycles[k], &expected(lifecycles[k]), &run).map_err(|e| {
                TestCaseError::fail(format!("{} in order {order:?}: {e}", ACCOUNTS[k]))
            })?;
        }
    }
    Ok(())
}

/// Two connected accounts with identical customer, subscription, invoice and user ids (and,
/// half the time, identical event ids) keep separate, true access answers in every order.
#[test]
fn two_connected_accounts_with_the_same_ids_keep_their_own_true_state_in_every_order() {
    // Ties are settled from each account's own API answers: every state must be the true one.
    STRIPE_API.with(|api| api.set(true));
    let rt = runtime();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let slots: Vec<usize> = (0..2 * MAX_EVENTS).collect();
    let strategy = (
        lifecycle_strategy(),
        lifecycle_strategy(),
        any::<bool>(),
        prop::collection::vec(Just(slots).prop_shuffle(), 4),
    );
    let result = runner.run(&strategy, |(a, b, same_event_ids, shuffles)| {
        let b = if same_event_ids {
            with_ids_of(&b, &a)
        } else {
            b
        };
        check_two(&rt, [&a, &b], &shuffles)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A Connect endpoint verifies with its own secrets only, and a platform endpoint with its own:
/// each refuses the other's signature (400, nothing stored).
#[test]
fn a_connect_endpoint_and_a_platform_endpoint_each_accept_only_their_own_secret() {
    let rt = runtime();
    let lifecycle = build_lifecycle(Link::Checkout, 1, 7, Vec::new());
    let store = Arc::new(InMemoryBillingStore::new());
    let service = connect_service(store.clone(), [&lifecycle, &lifecycle]);
    let ev = &lifecycle.events[0];
    let connect_signed = &sign_in(std::slice::from_ref(ev), 0)[0];
    let platform_signed = &sign_all(std::slice::from_ref(ev))[0];
    let family = connect_signed.home;
    rt.block_on(async {
        let wrong = [
            (connect_signed, family.endpoint()),
            (platform_signed, family.connect_endpoint()),
        ];
        for (s, endpoint) in wrong {
            let outcome = deliver_one(&service, s, endpoint).await;
            assert!(
                matches!(outcome, Outcome::Rejected(_)),
                "{endpoint}: {outcome:?}"
            );
        }
        assert!(store.customers().is_empty());
        let right = deliver_one(&service, connect_signed, family.connect_endpoint()).await;
        assert!(matches!(right, Outcome::Recorded { .. }), "{right:?}");
        let user = UserId::new(USER).in_account(Account::parse(ACCOUNTS[0]).expect("id"));
        assert!(
            store.user(&user).is_some(),
            "the account's user has its document"
        );
        assert!(store.user(&UserId::new(USER)).is_none());
    });
}
