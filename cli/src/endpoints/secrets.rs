//! The endpoints' signing secrets in Secrets Manager, in the format the functions read
//! (`secrets_manager::parse_secret_list`): a JSON array of `whsec_…`, newest first.

use aws_sdk_secretsmanager::Client;
use billing::adapters::sdk_error::Describe;
use billing::adapters::secrets_manager::{parse_secret_list, validate_secret_list};

/// The secret's current list; empty when the secret does not exist yet or holds no valid
/// list (then nothing in it could verify a delivery, so nothing is worth keeping).
pub async fn read(client: &Client, id: &str) -> Result<Vec<String>, String> {
    let answer = client.get_secret_value().secret_id(id).send().await;
    let raw = match answer {
        Ok(out) => out.secret_string().unwrap_or_default().to_owned(),
        Err(e) if not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading secret {id}: {}", e.describe())),
    };
    let list = parse_secret_list(&raw);
    if validate_secret_list(&list).is_err() {
        return Ok(Vec::new());
    }
    Ok(list.iter().map(|s| s.expose().to_owned()).collect())
}

/// Stores `list` as the secret's new current value. A secret given by name that does not
/// exist yet is created; one given by ARN must exist (an ARN cannot name a new secret).
pub async fn write(client: &Client, id: &str, list: &[String]) -> Result<(), String> {
    let value = serde_json::to_string(list).map_err(|e| e.to_string())?;
    let put = client
        .put_secret_value()
        .secret_id(id)
        .secret_string(&value)
        .send()
        .await;
    match put {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) && !id.starts_with("arn:") => client
            .create_secret()
            .name(id)
            .description("Stripe webhook signing secrets (billing stripe-endpoints)")
            .secret_string(value)
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("creating secret {id}: {}", e.describe())),
        Err(e) => Err(format!("writing secret {id}: {}", e.describe())),
    }
}

fn not_found<E, R>(e: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|code| code == "ResourceNotFoundException")
}
