//! [`Filter`]: one EC2 server-side filter (`instance-state-name` = `running`, `tag:Env` = `prod`),
//! as the shell builds it, and its conversion to the SDK's type. Not a parser of filter syntax.

/// A filter name and the values any of which may match.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub(crate) fn to_sdk(&self) -> aws_sdk_ec2::types::Filter {
        aws_sdk_ec2::types::Filter::builder()
            .name(&self.name)
            .set_values(Some(self.values.clone()))
            .build()
    }
}
