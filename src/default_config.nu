# nuaws's defaults: evaluated after Nushell's default config.nu and before yours, so anything
# here can be changed in your config.nu.

# Tab completion of AWS names comes from nuaws's own cache, keyed by the identity and region the
# line will use. Nushell's completion cache keys on the typed text alone: it would keep showing
# one profile's bucket names after `$env.AWS_PROFILE` changes, and keep the empty answer of a Tab
# that came before the names arrived. Turn it off; set it back here if you prefer it.
$env.config.completions.cache_size = 0

# Warm the cache (buckets, instances, security groups, VPCs, subnets, regions) in the background
# when the shell starts with AWS configured, and whenever the profile, region or endpoint changes,
# so the first Tab and the first listing are answered from memory.
$env.config.hooks.env_change = (
    ['AWS_PROFILE' 'AWS_REGION' 'AWS_DEFAULT_REGION' 'AWS_ENDPOINT_URL']
    | reduce --fold ($env.config.hooks.env_change? | default {}) {|name, hooks|
        $hooks | upsert $name (($hooks | get -o $name | default []) | append {|before, after|
            if $after != null { aws cache warm | ignore }
        })
    }
)
$env.config.hooks.pre_prompt = ($env.config.hooks.pre_prompt? | default [] | append {||
    if ($env.NUAWS_STARTED? | is-empty) {
        $env.NUAWS_STARTED = true
        let configured = (
            [$env.AWS_PROFILE? $env.AWS_ACCESS_KEY_ID? $env.AWS_ENDPOINT_URL?] | any {|v| $v != null }
        ) or ($nu.home-dir | path join .aws config | path exists)
        if $configured { aws cache warm | ignore }
    }
})
