// The Lua scripts of the Redis shared state. Each runs atomically, so a seq, the entry stamped with it and
// the message announcing it can never be seen apart, and messages reach subscribers in seq order.
//
// Stored entries are `{"seq":N,"value":V}` and messages `{"kind":K,"id":I,"seq":N,"value":V|null}`, built
// by concatenation so that V is kept byte for byte as the client serialized it (cjson would re-encode it).

/**
 * One write: KEYS seq, target (a hash, or the engine's string key); ARGV channel, kind, id, value JSON
 * ('' deletes). Returns the seq.
 */
export const WRITE_SCRIPT = `
local channel, kind, id, value = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seq = redis.call('INCR', KEYS[1])
if value == '' then
  if kind == 'engine' then redis.call('DEL', KEYS[2]) else redis.call('HDEL', KEYS[2], id) end
else
  local stored = '{"seq":' .. seq .. ',"value":' .. value .. '}'
  if kind == 'engine' then redis.call('SET', KEYS[2], stored) else redis.call('HSET', KEYS[2], id, stored) end
end
if value == '' then value = 'null' end
redis.call('PUBLISH', channel,
  '{"kind":' .. cjson.encode(kind) .. ',"id":' .. cjson.encode(id) .. ',"seq":' .. seq .. ',"value":' .. value .. '}')
return seq
`;

/**
 * A writer's full push: makes the store hold exactly the given registrations and container states (and
 * the engine state, unless ''), announcing every entry it changes or deletes, so live readers converge
 * without a resync; unchanged entries keep their seq and send nothing. Then records the push in the
 * synced key and publishes a resync message, which readers waiting on an emptied store need.
 * KEYS seq, registrations, containers, engine, synced; ARGV channel, JSON
 * `{"registrations":[[id,valueJson]...],"containers":[[id,valueJson]...],"engine":valueJson|''}`.
 * Returns {written, deleted, seq}.
 */
export const PUSH_SCRIPT = `
local seqKey, syncedKey, channel = KEYS[1], KEYS[5], ARGV[1]
local desired = cjson.decode(ARGV[2])
local written, deleted = 0, 0
local function publish(kind, id, seq, value)
  redis.call('PUBLISH', channel,
    '{"kind":"' .. kind .. '","id":' .. cjson.encode(id) .. ',"seq":' .. seq .. ',"value":' .. value .. '}')
end
local function stored(seq, value) return '{"seq":' .. seq .. ',"value":' .. value .. '}' end
local function valueOf(text)
  if not text then return nil end
  return string.match(text, '^{"seq":%d+,"value":(.*)}$')
end
local function pushHash(key, kind, entries)
  local wanted = {}
  for _, entry in ipairs(entries) do
    local id, value = entry[1], entry[2]
    wanted[id] = true
    if valueOf(redis.call('HGET', key, id)) ~= value then
      local seq = redis.call('INCR', seqKey)
      redis.call('HSET', key, id, stored(seq, value))
      publish(kind, id, seq, value)
      written = written + 1
    end
  end
  for _, id in ipairs(redis.call('HKEYS', key)) do
    if not wanted[id] then
      local seq = redis.call('INCR', seqKey)
      redis.call('HDEL', key, id)
      publish(kind, id, seq, 'null')
      deleted = deleted + 1
    end
  end
end
pushHash(KEYS[2], 'registration', desired.registrations)
pushHash(KEYS[3], 'container', desired.containers)
if desired.engine ~= '' and valueOf(redis.call('GET', KEYS[4])) ~= desired.engine then
  local seq = redis.call('INCR', seqKey)
  redis.call('SET', KEYS[4], stored(seq, desired.engine))
  publish('engine', '', seq, desired.engine)
  written = written + 1
end
local seq = redis.call('INCR', seqKey)
redis.call('SET', syncedKey, seq)
redis.call('PUBLISH', channel, '{"kind":"resync","seq":' .. seq .. '}')
return {written, deleted, seq}
`;
