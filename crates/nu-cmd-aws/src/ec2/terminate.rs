//! `aws ec2 terminate`.

use aws_core::ec2::StateChange;

use super::state::StateChangeSpec;

pub static SPEC: StateChangeSpec = StateChangeSpec {
    name: "aws ec2 terminate",
    description: "Terminate EC2 instances (irreversible); one row per instance with its previous and current state.",
    search_terms: &["terminate-instances", "delete", "destroy"],
    change: |_| StateChange::Terminate,
    force: false,
    examples: &[
        ("Terminate one instance.", "aws ec2 terminate i-0123456789abcdef0"),
        ("Terminate every stopped instance named like scratch-*.", "aws ec2 instances --filter {instance-state-name: stopped, 'tag:Name': 'scratch-*'} | aws ec2 terminate"),
    ],
};
