namespace IdentityService.Protection.Redis;

/// <summary>
/// The <c>Redis</c> section. Unset, the protections' counters and blocks live in one instance's memory, lockouts
/// in the database, and cache invalidations stay local. Set, all of them go through Redis, so that every replica
/// shares the counters, the blocks and the lockouts, and a policy or tenant changed on one replica is evicted
/// from the others' caches at once.
/// </summary>
/// <remarks>
/// When Redis cannot be reached:
/// <list type="bullet">
/// <item>At start, the service does not start: a wrong address or a Redis that is down is an error naming
/// <c>Redis:Configuration</c>, not a service that answers 500 later. Adding <c>abortConnect=false</c> to the
/// configuration string lets it start anyway and connect when Redis comes up.</item>
/// <item>While running, the connection is retried in the background. Meanwhile what needs Redis (a sign-in, the
/// IP block routes) is refused with 503 and <c>Retry-After</c> rather than run without its protections, each
/// failure is logged, and <c>/health/ready</c> reports the instance unready. A change published while Redis was
/// down is logged and not delivered: other replicas then see it when their cached copy expires (at most five
/// minutes for a policy, thirty seconds for a tenant).</item>
/// </list>
/// </remarks>
public sealed class RedisOptions
{
    public const string Section = "Redis";

    /// <summary>A StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379</c> or <c>redis:6379,password=...,ssl=true</c>.</summary>
    public string? Configuration { get; set; }

    /// <summary>Prefix of every key and channel the service uses, so that several deployments may share one Redis. Default <c>is:</c>.</summary>
    public string KeyPrefix { get; set; } = "is:";
}
