// The peer's storage: in memory, as oidc-provider's own development adapter, with the same semantics (find,
// upsert, consume, destroy, the lookups by uid and user code, revocation of every token of a grant) and a bound
// on what it keeps (the least recently used entries go first, as there). It differs in its bookkeeping only: the
// development adapter (lib/adapters/memory_adapter.js, 9.13.3) walks every token ever stored for a grant on each
// token it stores (to drop expired ones and take the latest expiry), so along one rotating refresh token the
// peer's cost per refresh grows with the number of refreshes before it: measured here, its refreshes per CPU-s
// fell by a quarter across one minute of the benchmark, and its figure depended on how long the chains had run.
// Here a grant's tokens are a set kept beside the entries, and storing a token costs the same however many
// came before it, as with a production store (a Redis set, an indexed table).
const MAX_ENTRIES = 2_000; // the development adapter's LRU keeps between 1,000 and 2,000

const entries = new Map(); // key -> { value, expiresAt, grantId }
const grants = new Map(); // grantId -> Set of keys
const byUid = new Map(); // session uid -> the session's key
const byUserCode = new Map(); // user code -> the device code's key

// The models whose entries belong to a grant (revoked with it); redis-adapter.js uses the same list.
export const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

function remove(key) {
  const entry = entries.get(key);
  if (!entry) return;
  entries.delete(key);
  if (entry.grantId !== undefined) {
    const members = grants.get(entry.grantId);
    members?.delete(key);
    if (members?.size === 0) grants.delete(entry.grantId);
  }
  const { uid, userCode } = entry.value;
  if (uid !== undefined && byUid.get(uid) === key) byUid.delete(uid);
  if (userCode !== undefined && byUserCode.get(userCode) === key) byUserCode.delete(userCode);
}

function read(key) {
  const entry = entries.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt <= Date.now()) {
    remove(key);
    return undefined;
  }
  // Used: to the end of the insertion order, so that eviction takes the least recently used.
  entries.delete(key);
  entries.set(key, entry);
  return entry.value;
}

export default class BenchMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    remove(key);
    const grantId = grantable.has(this.model) ? payload.grantId : undefined;
    entries.set(key, { value: payload, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity, grantId });
    if (grantId !== undefined) {
      if (!grants.has(grantId)) grants.set(grantId, new Set());
      grants.get(grantId).add(key);
    }
    if (this.model === 'Session' && payload.uid !== undefined) byUid.set(payload.uid, key);
    if (payload.userCode !== undefined) byUserCode.set(payload.userCode, key);
    // Maps iterate in insertion order: the first key is the least recently used.
    while (entries.size > MAX_ENTRIES) remove(entries.keys().next().value);
  }

  async find(id) {
    return read(this.key(id));
  }

  async findByUid(uid) {
    const key = byUid.get(uid);
    return key === undefined ? undefined : read(key);
  }

  async findByUserCode(userCode) {
    const key = byUserCode.get(userCode);
    return key === undefined ? undefined : read(key);
  }

  async consume(id) {
    const value = read(this.key(id));
    if (value) value.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    remove(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of [...(grants.get(grantId) ?? [])]) remove(key);
    grants.delete(grantId);
  }
}
