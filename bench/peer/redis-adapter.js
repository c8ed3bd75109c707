// The peer's storage when bench/run.sh is given --peer-store redis: Redis (oidc-provider's repository has an
// example adapter for it), so that the peer keeps its grants as a deployed one must: outside the process,
// surviving a restart, shared by its instances. Same semantics as
// adapter.js: find, upsert, consume, destroy, the lookups by uid and user code, revocation of every token of a
// grant. Each entry is a hash (its payload as JSON, and when it was consumed), expiring with the entry; a
// grant's tokens are a set of keys that lives as long as its longest-lived token. Commands sent in the same
// turn of the event loop go out together (ioredis's auto-pipelining), which only makes the peer faster.
// Usage: PEER_REDIS=redis://127.0.0.1:6390 node server.js
import Redis from 'ioredis';
import { grantable } from './adapter.js';

const client = new Redis(process.env.PEER_REDIS, { enableAutoPipelining: true });

// Marks an entry consumed only while it exists, in one step: a mark must not outlive (or recreate) its entry.
client.defineCommand('consumeIfPresent', {
  numberOfKeys: 1,
  lua: "if redis.call('exists', KEYS[1]) == 1 then redis.call('hset', KEYS[1], 'consumed', ARGV[1]) end",
});

const grantKey = (grantId) => `grant:${grantId}`;
const uidKey = (uid) => `uid:${uid}`;
const userCodeKey = (userCode) => `userCode:${userCode}`;

export default class BenchRedisAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const ttl = typeof expiresIn === 'number' && expiresIn > 0 ? Math.ceil(expiresIn) : undefined;
    const batch = client.multi().del(key).hset(key, 'payload', JSON.stringify(payload));
    if (ttl !== undefined) batch.expire(key, ttl);
    if (grantable.has(this.model) && payload.grantId !== undefined) {
      const grant = grantKey(payload.grantId);
      batch.sadd(grant, key);
      // The set lives as long as the longest-lived of its tokens (GT: never shortened by a shorter one).
      if (ttl !== undefined) batch.expire(grant, ttl, 'NX').expire(grant, ttl, 'GT');
    }
    if (this.model === 'Session' && payload.uid !== undefined) {
      if (ttl !== undefined) batch.set(uidKey(payload.uid), id, 'EX', ttl); else batch.set(uidKey(payload.uid), id);
    }
    if (payload.userCode !== undefined) {
      if (ttl !== undefined) batch.set(userCodeKey(payload.userCode), id, 'EX', ttl); else batch.set(userCodeKey(payload.userCode), id);
    }
    await batch.exec();
  }

  async find(id) {
    const [payload, consumed] = await client.hmget(this.key(id), 'payload', 'consumed');
    if (payload === null) return undefined;
    const value = JSON.parse(payload);
    if (consumed !== null) value.consumed = Number(consumed);
    return value;
  }

  async findByUid(uid) {
    const id = await client.get(uidKey(uid));
    return id === null ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = await client.get(userCodeKey(userCode));
    return id === null ? undefined : this.find(id);
  }

  async consume(id) {
    await client.consumeIfPresent(this.key(id), Math.floor(Date.now() / 1000));
  }

  async destroy(id) {
    await client.del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grant = grantKey(grantId);
    const keys = await client.smembers(grant);
    await client.del(...keys, grant);
  }
}
