-- POST load for wrk, the same script for the platform and its baseline:
--   wrk -s post.lua URL -- body   PATH BODY_FILE      same JSON body each request
--   wrk -s post.lua URL -- create PATH BODY_FILE      birth_name made unique per request
--   wrk -s post.lua URL -- sign   PATH IDS_FILE N DIR PATH's {id} from "id etag" lines, each
--                                                     once; run with -tN -cN (one connection
--                                                     per thread): thread k takes lines k, k+N...
--                                                     and, once answered, stops and writes
--                                                     DIR/done-k (wrk itself runs for its
--                                                     duration unless interrupted: the caller
--                                                     sends SIGINT when the N files exist).
-- Headers given with -H (Authorization) are kept on every request.

local made = 0

function setup(thread)
  thread:set("index", made)
  made = made + 1
end

local function read(path)
  local file = assert(io.open(path, "r"))
  local text = file:read("*a")
  file:close()
  return text
end

local function letters(n)
  -- A number as letters only (a birth name accepts nothing else): 0 -> A, 25 -> Z, 26 -> BA.
  local out = ""
  repeat
    out = string.char(65 + n % 26) .. out
    n = math.floor(n / 26)
  until n == 0
  return out
end

local function headers(extra)
  local all = { ["Content-Type"] = "application/json" }
  for name, value in pairs(wrk.headers) do all[name] = value end
  for name, value in pairs(extra or {}) do all[name] = value end
  return all
end

function init(args)
  mode, path = args[1], args[2]
  sent, answered = 0, 0
  if mode == "sign" then
    local threads = tonumber(args[4])
    done_file = args[5] .. "/done-" .. index
    queue = {}
    local line_number = 0
    for line in read(args[3]):gmatch("[^\n]+") do
      if line_number % threads == index then
        local id, etag = line:match("^(%S+)%s+(.+)$")
        queue[#queue + 1] = { id = id, etag = etag }
      end
      line_number = line_number + 1
    end
  else
    body = read(args[3])
  end
end

function request()
  sent = sent + 1
  if mode == "create" then
    local name = "CHARGE" .. letters(index) .. "X" .. letters(sent)
    local unique = body:gsub("__NAME__", name)
    return wrk.format("POST", path, headers(), unique)
  elseif mode == "sign" then
    -- One connection per thread: the next document is the one after those answered (wrk calls
    -- request() once more at start to check the script, which must not skip one).
    local item = queue[math.min(answered + 1, #queue)]
    return wrk.format("POST", path:gsub("{id}", item.id), headers({ ["If-Match"] = item.etag }), "{}")
  end
  return wrk.format("POST", path, headers(), body)
end

function response(status, headers, body)
  answered = answered + 1
  if mode == "sign" and answered >= #queue then
    -- Each document is signed once: this thread's connection is done.
    wrk.thread:stop()
    local file = assert(io.open(done_file, "w"))
    file:close()
  end
end
