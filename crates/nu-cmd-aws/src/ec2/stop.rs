//! `aws ec2 stop`.

use aws_core::ec2::StateChange;

use super::state::StateChangeSpec;

pub static SPEC: StateChangeSpec = StateChangeSpec {
    name: "aws ec2 stop",
    description: "Stop EC2 instances; one row per instance with its previous and current state.",
    search_terms: &["stop-instances", "shutdown"],
    change: |force| StateChange::Stop { force },
    force: true,
    examples: &[
        ("Stop one instance.", "aws ec2 stop i-0123456789abcdef0"),
        ("Stop the running instances of a team.", "aws ec2 instances --filter {instance-state-name: running, 'tag:Team': team-2} | aws ec2 stop"),
    ],
};
