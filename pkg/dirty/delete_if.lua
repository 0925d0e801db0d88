-- Delete a key only if it still holds a value (Map.Migrate: a legacy state is deleted once
-- moved, unless a filter of the legacy layout changed it meanwhile).
--
-- KEYS[1] the key, ARGV[1] the value it must hold
-- Returns 1 when deleted, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
