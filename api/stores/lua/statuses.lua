-- Members' statuses and one attribute, from the dispatch slot.
-- KEYS[1] = the status hash, KEYS[2] = the attribute hash (member -> value; the status hash
-- again when there is none); ARGV[1] = the attribute hash's use ('1' or '0'), ARGV[2] = the
-- per-member attribute key prefix ('' for none; its keys are in the dispatch slot),
-- ARGV[3] = that key's field, ARGV[4] = the ids, \n-separated, ARGV[5...] = the statuses
-- whose attribute is wanted. Returns two strings: the statuses and the attributes
-- (\n-separated, '' when missing or not wanted), read with one HMGET per HMGET_CHUNK members.
local o_st, o_at = {}, {}
if ARGV[4] == '' then return {'', ''} end
local ids = {}
for id in string.gmatch(ARGV[4], '[^\n]+') do ids[#ids + 1] = id end
local attr_prefix, attr_field = ARGV[2], ARGV[3]
local want = {}
for w = 5, #ARGV do want[ARGV[w]] = true end
for s = 1, #ids, HMGET_CHUNK do
  local chunk = {}
  for t = s, math.min(s + HMGET_CHUNK - 1, #ids) do chunk[#chunk + 1] = ids[t] end
  local sts = redis.call('HMGET', KEYS[1], unpack(chunk))
  local ats = false
  if ARGV[1] == '1' then ats = redis.call('HMGET', KEYS[2], unpack(chunk)) end
  for t = 1, #chunk do
    o_st[#o_st + 1] = sts[t] or ''
    local a = ats and ats[t]
    if not (sts[t] and want[sts[t]]) then
      a = ''
    elseif not a then
      if attr_prefix ~= '' then
        a = redis.call('HGET', attr_prefix .. chunk[t], attr_field) or ''
      else
        a = ''
      end
    end
    o_at[#o_at + 1] = a
  end
end
return {table.concat(o_st, '\n'), table.concat(o_at, '\n')}
