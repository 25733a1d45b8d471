//! Sign-in and sign-out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::Field;
use crate::audit;
use crate::auth::{self, Caller, SignIn};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::ApiState;

pub(super) const SIGN_IN_FIELDS: &[Field] = &[
    Field {
        name: "username",
        kind: "string",
        required: true,
        description: "User name.",
    },
    Field {
        name: "password",
        kind: "string",
        required: true,
        description: "Password, at least 12 characters.",
    },
    Field {
        name: "totp",
        kind: "string",
        required: false,
        description:
            "Current 6-digit code of the authenticator app; required for clinicians and operators.",
    },
];

/// Sign-in body. Not `Debug`, because it contains the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignInBody {
    username: String,
    password: String,
    totp: Option<String>,
}

pub(super) async fn sign_in(
    State(state): State<ApiState>,
    JsonBody(body): JsonBody<SignInBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = SignIn {
        username: body.username,
        password: Zeroizing::new(body.password),
        totp: body.totp.map(Zeroizing::new),
    };
    let session = state
        .blocking(move |state| auth::sign_in(state, &request))
        .await?;
    let body = json!({
        "token": session.token.expose_secret(),
        "token_type": "Bearer",
        "expires_at_s": session.expires_at_s,
        "account": session.account,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

pub(super) async fn sign_out(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<StatusCode, ApiError> {
    state
        .blocking(move |state| {
            let now_s = state.now_s();
            state.access().revoke_token(&caller.token_hash, now_s)?;
            audit::signed_out(&caller.account, now_s);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
