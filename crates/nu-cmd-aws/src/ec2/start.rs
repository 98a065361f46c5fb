//! `aws ec2 start`.

use aws_core::ec2::StateChange;

use super::state::StateChangeSpec;

pub static SPEC: StateChangeSpec = StateChangeSpec {
    name: "aws ec2 start",
    description: "Start EC2 instances; one row per instance with its previous and current state.",
    search_terms: &["start-instances", "boot"],
    change: |_| StateChange::Start,
    force: false,
    examples: &[
        ("Start one instance.", "aws ec2 start i-0123456789abcdef0"),
        ("Start every stopped instance of a team.", "aws ec2 instances --filter {instance-state-name: stopped, 'tag:Team': team-1} | aws ec2 start"),
    ],
};
