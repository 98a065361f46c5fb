//! Bucket tags and bucket regions: GetBucketTagging, where a bucket without tags answers
//! `NoSuchTagSet` (no tags, not a failure), and GetBucketLocation, for the buckets whose region
//! ListBuckets did not report (older S3-compatible servers).
//!
//! Not here: object tags, or writing tags.

use aws_sdk_s3::Client;

use crate::error::AwsError;
use crate::s3::route::BucketRouter;

/// The tags of `bucket` as (key, value) pairs, in the order S3 gives them; empty without tags.
/// The call goes to the bucket's region (GetBucketTagging of a bucket elsewhere is refused).
pub async fn bucket_tags(router: &BucketRouter, bucket: &str) -> Result<Vec<(String, String)>, AwsError> {
    let answer = router
        .call(bucket, |client: Client| async move { client.get_bucket_tagging().bucket(bucket).send().await.map_err(|e| AwsError::from_sdk("S3 GetBucketTagging", e)) })
        .await;
    match answer {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(err) => {
            if err.code.as_deref() == Some("NoSuchTagSet") {
                Ok(Vec::new())
            } else {
                Err(err)
            }
        }
    }
}

/// The region `bucket` lives in, from GetBucketLocation (which any region answers).
pub async fn bucket_location(client: &Client, bucket: &str) -> Result<String, AwsError> {
    let out = client
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("S3 GetBucketLocation", e))?;
    Ok(location_region(out.location_constraint().map(|c| c.as_str())))
}

/// A location constraint as a region name: none (or empty) is us-east-1, and `EU` the legacy
/// name of eu-west-1.
fn location_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(region) => region.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_constraints_name_regions() {
        assert_eq!(location_region(None), "us-east-1");
        assert_eq!(location_region(Some("")), "us-east-1");
        assert_eq!(location_region(Some("EU")), "eu-west-1");
        assert_eq!(location_region(Some("ap-south-2")), "ap-south-2");
    }
}
