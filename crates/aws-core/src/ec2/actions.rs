//! Instance state changes: start, stop (optionally forced) and terminate, in batches of at most
//! [`MAX_IDS_PER_CALL`] ids, each instance reported as a row of its previous and current state.
//! Not waiting for the new state to be reached, and no confirmation prompt (the shell asks).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::InstanceStateChange;

use super::fields::enum_text;
use crate::error::AwsError;
use crate::row::{Field, Row};
use crate::session::Session;

/// Instance ids per Start/Stop/TerminateInstances call.
const MAX_IDS_PER_CALL: usize = 1000;

/// What to do with the instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChange {
    Start,
    /// `force` skips the OS shutdown and file-system flush: for an instance stuck in `stopping`.
    Stop {
        force: bool,
    },
    Terminate,
}

/// Start/stop/terminate the given instance ids (one API call per 1000 ids), returning one Row per instance: id, previous_state, current_state.
///
/// Batches run one after the other; the first failing batch ends the call with its error (the
/// batches before it have taken effect).
pub async fn change_state(
    session: &Session,
    ids: Vec<String>,
    change: StateChange,
) -> Result<Vec<Row>, AwsError> {
    let client = session.ec2()?;
    let mut rows = Vec::with_capacity(ids.len());
    for batch in ids.chunks(MAX_IDS_PER_CALL) {
        let changes = send(client, batch.to_vec(), change).await?;
        rows.extend(changes.iter().map(state_change_row));
    }
    Ok(rows)
}

/// One API call for one batch.
async fn send(
    client: &Client,
    ids: Vec<String>,
    change: StateChange,
) -> Result<Vec<InstanceStateChange>, AwsError> {
    let ids = Some(ids);
    match change {
        StateChange::Start => client
            .start_instances()
            .set_instance_ids(ids)
            .send()
            .await
            .map(|out| out.starting_instances.unwrap_or_default())
            .map_err(|e| AwsError::from_sdk("EC2 StartInstances", e)),
        StateChange::Stop { force } => client
            .stop_instances()
            .set_instance_ids(ids)
            .set_force(force.then_some(true))
            .send()
            .await
            .map(|out| out.stopping_instances.unwrap_or_default())
            .map_err(|e| AwsError::from_sdk("EC2 StopInstances", e)),
        StateChange::Terminate => client
            .terminate_instances()
            .set_instance_ids(ids)
            .send()
            .await
            .map(|out| out.terminating_instances.unwrap_or_default())
            .map_err(|e| AwsError::from_sdk("EC2 TerminateInstances", e)),
    }
}

pub(crate) fn state_change_row(c: &InstanceStateChange) -> Row {
    Row::new()
        .with("id", Field::text(c.instance_id()))
        .with(
            "previous_state",
            enum_text(c.previous_state().and_then(|s| s.name())),
        )
        .with(
            "current_state",
            enum_text(c.current_state().and_then(|s| s.name())),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{InstanceState, InstanceStateName};

    #[test]
    fn state_change_row_shape() {
        let change = InstanceStateChange::builder()
            .instance_id("i-1")
            .previous_state(
                InstanceState::builder()
                    .code(16)
                    .name(InstanceStateName::Running)
                    .build(),
            )
            .current_state(
                InstanceState::builder()
                    .code(64)
                    .name(InstanceStateName::Stopping)
                    .build(),
            )
            .build();
        let row = state_change_row(&change);
        assert_eq!(
            row.columns,
            vec![
                ("id", Field::Text("i-1".into())),
                ("previous_state", Field::Text("running".into())),
                ("current_state", Field::Text("stopping".into())),
            ]
        );
    }
}
