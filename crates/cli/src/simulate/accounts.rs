//! `tarem simulate --accounts FILE`: an organisation to simulate. The hub governs its own
//! account and the members the file lists; each member has its own Automation, OpsCenter and
//! tags, and may be set up broken the ways a real member breaks:
//!
//! ```json
//! {"hub": "111122223333",
//!  "members": {"444455556666": {},
//!              "777788889999": {"role": "missing"},
//!              "123456789012": {"paused": true, "version": "0", "active": true}}}
//! ```

use crate::CliError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::MemberRole;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    /// The hub's own account (default: the simulated stack's, 123456789012).
    hub: Option<String>,
    members: BTreeMap<String, MemberSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberSpec {
    /// `deployed` (default) or `missing`: AssumeRole of tarem-member is refused.
    role: Option<String>,
    /// `/tarem/member/paused` is `on`.
    #[serde(default)]
    paused: bool,
    /// `/tarem/member/version` (default: the version this hub needs; `null`: none).
    #[serde(default = "current_version")]
    version: Option<String>,
    /// Still in the organisation (default true).
    #[serde(default = "yes")]
    active: bool,
}

fn current_version() -> Option<String> {
    Some(tarem_shared::ports::MEMBER_TEMPLATE_VERSION.to_string())
}

fn yes() -> bool {
    true
}

fn account_id(text: &str, file: &Path) -> Result<(), CliError> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--accounts {}: {text:?} is not a 12-digit AWS account id",
            file.display()
        )))
    }
}

/// Reads the file and makes `local` that organisation's hub. Returns the members, in order.
pub(super) fn apply(file: &Path, local: &mut LocalLoop) -> Result<Vec<String>, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| CliError::Usage(format!("--accounts {}: {error}", file.display())))?;
    let accounts: AccountsFile = serde_json::from_str(&text).map_err(|error| {
        CliError::Usage(format!(
            "--accounts {}: {error} (expected {{\"hub\": \"<id>\", \"members\": {{\"<id>\": {{\"role\": \"deployed|missing\", \"paused\": false, \"version\": \"1\", \"active\": true}}}}}})",
            file.display()
        ))
    })?;
    if let Some(hub) = &accounts.hub {
        account_id(hub, file)?;
    }
    let mut roles = vec![];
    for (id, spec) in &accounts.members {
        account_id(id, file)?;
        if accounts.hub.as_deref() == Some(id.as_str()) {
            return Err(CliError::Usage(format!(
                "--accounts {}: {id} is the hub; a hub is not its own member",
                file.display()
            )));
        }
        let role = match spec.role.as_deref() {
            None | Some("deployed") => MemberRole::Deployed,
            Some("missing") => MemberRole::Missing,
            Some(other) => {
                return Err(CliError::Usage(format!(
                    "--accounts {}: member {id}: role {other:?} is not `deployed` or `missing`",
                    file.display()
                )));
            }
        };
        roles.push((id.clone(), role));
    }
    let members: Vec<&str> = accounts.members.keys().map(String::as_str).collect();
    local.govern_as(accounts.hub.as_deref(), &members);
    for ((id, role), spec) in roles.iter().zip(accounts.members.values()) {
        let member = local.members.add(id);
        member.update(|account| {
            account.role = *role;
            account.paused = if spec.paused { "on" } else { "off" }.into();
            account.version = spec.version.clone();
            account.active = spec.active;
        });
    }
    Ok(accounts.members.into_keys().collect())
}
