//! `aws cache`: the cache group (help only: this is nuaws's own, not an AWS CLI command).

crate::external::help_group!(
    AwsCache,
    "aws cache",
    "The result cache of the AWS commands: memory, then disk, then the network.",
    "Every read command (listings, head) is served from an in-memory LRU, then from an LMDB cache on disk shared by all nuaws processes of the user, then from AWS. Entries are scoped by identity (account and caller ARN, from STS), region and endpoint, and expire by resource type: images and snapshots 24 h, regions 24 h, buckets, VPCs and subnets 1 h, security groups 15 min, instances and volumes 5 min, object listings and metadata 1 min. Override with $env.NUAWS_CACHE_TTL = {instances: 1min}; turn caching off with $env.NUAWS_CACHE = off, or per command with --no-cache (or --refresh to fetch and store anew). Writes made through nuaws (aws s3 save, rm and cp, aws ec2 start|stop|terminate) drop the entries they make stale. Object bodies and anything that can carry secrets are never cached. The disk cache lives in $env.NUAWS_CACHE_DIR, else $XDG_CACHE_HOME/nuaws, else ~/.cache/nuaws."
);
