// Pub/sub across the cluster.
//
// PUBLISH delivers to this node's subscribers and broadcasts the message to
// every other member over the peer transport (a Forward with is_publish),
// whose nodes deliver it to theirs; nothing goes through the Raft log. As in
// Redis Cluster, delivery is at most once and fire-and-forget (a node
// unreachable at that moment misses it), and PUBLISH answers the number of
// clients of the node it was sent to that received it. A subscriber sees
// the messages of one publisher connection in the order they were published.
// Pushes are queued behind the connection's pending replies, so they never
// overtake a reply.
#include <cstring>

#include "kv/glob.h"
#include "server/reply_util.h"
#include "server/server.h"

namespace qkv::server {

namespace {

void bulk(std::string* out, std::string_view s) {
  *out += '$';
  *out += std::to_string(s.size());
  *out += "\r\n";
  out->append(s.data(), s.size());
  *out += "\r\n";
}

// An array (RESP2) or a push (RESP3) of n elements.
void header(std::string* out, net::Protocol proto, size_t n) {
  *out += proto == net::Protocol::kResp3 ? '>' : '*';
  *out += std::to_string(n);
  *out += "\r\n";
}

bool allowed_when_subscribed(const std::string& name) {
  return name == "subscribe" || name == "psubscribe" || name == "unsubscribe" ||
         name == "punsubscribe" || name == "ping" || name == "quit" || name == "reset";
}

}  // namespace

void Server::push(const std::shared_ptr<Client>& c, std::string bytes) {
  if (c->closed) return;
  uint64_t seq = c->first_seq + c->slots.size();
  c->slots.emplace_back();
  finish_slot(c, seq, std::move(bytes));
}

size_t Server::deliver(std::string_view channel, std::string_view message) {
  size_t n = 0;
  // Pushes to every live subscriber of one channel or pattern.
  auto fan_out = [&](std::map<uint64_t, std::weak_ptr<Client>>& subs, const std::string* pattern) {
    for (auto s = subs.begin(); s != subs.end();) {
      auto c = s->second.lock();
      if (!c || c->closed) {
        s = subs.erase(s);
        continue;
      }
      std::string out;
      header(&out, c->proto, pattern ? 4 : 3);
      bulk(&out, pattern ? "pmessage" : "message");
      if (pattern) bulk(&out, *pattern);
      bulk(&out, channel);
      bulk(&out, message);
      push(c, std::move(out));
      n++;
      ++s;
    }
  };
  if (auto it = channel_subs_.find(channel); it != channel_subs_.end()) {
    fan_out(it->second, nullptr);
    if (it->second.empty()) channel_subs_.erase(it);
  }
  for (auto it = pattern_subs_.begin(); it != pattern_subs_.end();) {
    if (kv::glob_match(it->first, channel)) fan_out(it->second, &it->first);
    it = it->second.empty() ? pattern_subs_.erase(it) : std::next(it);
  }
  stats_.pubsub_delivered += n;
  return n;
}

bool Server::handle_pubsub(const std::shared_ptr<Client>& c, std::vector<std::string>& args,
                           ReplyFn& reply) {
  const std::string name = lower(args[0]);
  const bool subscribed = c->subscribed();
  const bool ours = name == "subscribe" || name == "psubscribe" || name == "unsubscribe" ||
                    name == "punsubscribe" || name == "publish" || name == "pubsub";
  if (!ours) {
    if (subscribed && c->proto == net::Protocol::kResp2 && !allowed_when_subscribed(name)) {
      reply(err("ERR Can't execute '" + name +
                "': only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
                "context"));
      return true;
    }
    if (subscribed && c->proto == net::Protocol::kResp2 && name == "ping") {
      std::string out = "*2\r\n$4\r\npong\r\n";
      bulk(&out, args.size() > 1 ? std::string_view(args[1]) : std::string_view());
      reply(std::move(out));
      return true;
    }
    return false;
  }
  if (!c->authed) {
    reply(err("NOAUTH Authentication required."));
    return true;
  }
  if (c->in_multi) return false;  // refused as a non-data command by the transaction code
  stats_.commands_processed++;
  auto count = [&] { return c->channels.size() + c->patterns.size(); };
  auto confirm = [&](std::string* out, std::string_view kind, const std::string* target) {
    header(out, c->proto, 3);
    bulk(out, kind);
    if (target != nullptr) {
      bulk(out, *target);
    } else {
      *out += c->proto == net::Protocol::kResp3 ? "_\r\n" : "$-1\r\n";
    }
    *out += ':' + std::to_string(count()) + "\r\n";
  };
  std::weak_ptr<Client> wc = c;
  if (name == "publish") {
    if (args.size() != 3) {
      reply(err(kv::arity_error("publish")));
      return true;
    }
    stats_.pubsub_published++;
    const size_t n = deliver(args[1], args[2]);
    for (uint64_t id : node_->members(kGroup)) {
      if (id == node_->id()) continue;
      netpb::Forward f;
      f.set_is_publish(true);
      f.set_channel(args[1]);
      f.set_payload(args[2]);
      (void)node_->transport().forward(id, std::move(f));  // best effort, as Redis Cluster
    }
    reply(":" + std::to_string(n) + "\r\n");
    return true;
  }
  if (name == "subscribe" || name == "psubscribe") {
    if (args.size() < 2) {
      reply(err(kv::arity_error(name)));
      return true;
    }
    const bool pattern = name == "psubscribe";
    std::string out;
    for (size_t i = 1; i < args.size(); i++) {
      auto& mine = pattern ? c->patterns : c->channels;
      auto& table = pattern ? pattern_subs_ : channel_subs_;
      if (mine.insert(args[i]).second) table[args[i]][c->id] = wc;
      confirm(&out, name, &args[i]);
    }
    reply(std::move(out));
    return true;
  }
  if (name == "unsubscribe" || name == "punsubscribe") {
    const bool pattern = name == "punsubscribe";
    auto& mine = pattern ? c->patterns : c->channels;
    auto& table = pattern ? pattern_subs_ : channel_subs_;
    std::vector<std::string> targets(args.begin() + 1, args.end());
    if (targets.empty()) targets.assign(mine.begin(), mine.end());
    std::string out;
    if (targets.empty()) confirm(&out, name, nullptr);
    for (const auto& t : targets) {
      if (mine.erase(t) > 0) {
        auto it = table.find(t);
        if (it != table.end()) {
          it->second.erase(c->id);
          if (it->second.empty()) table.erase(it);
        }
      }
      confirm(&out, name, &t);
    }
    reply(std::move(out));
    return true;
  }
  // PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT: this node's
  // (closed connections are pruned first).
  for (auto* table : {&channel_subs_, &pattern_subs_}) {
    for (auto it = table->begin(); it != table->end();) {
      std::erase_if(it->second, [](const auto& kv) {
        auto cl = kv.second.lock();
        return !cl || cl->closed;
      });
      it = it->second.empty() ? table->erase(it) : std::next(it);
    }
  }
  const std::string sub = args.size() > 1 ? lower(args[1]) : "";
  std::string out;
  if (sub == "channels" && args.size() <= 3) {
    std::vector<std::string_view> names;
    for (const auto& [ch, subs] : channel_subs_) {
      if (args.size() == 2 || kv::glob_match(args[2], ch)) names.push_back(ch);
    }
    out = "*" + std::to_string(names.size()) + "\r\n";
    for (auto n : names) bulk(&out, n);
  } else if (sub == "numsub") {
    out = (c->proto == net::Protocol::kResp3 ? "%" : "*") +
          std::to_string(c->proto == net::Protocol::kResp3 ? args.size() - 2 : 2 * (args.size() - 2)) +
          "\r\n";
    for (size_t i = 2; i < args.size(); i++) {
      auto it = channel_subs_.find(args[i]);
      bulk(&out, args[i]);
      out += ":" + std::to_string(it == channel_subs_.end() ? 0 : it->second.size()) + "\r\n";
    }
  } else if (sub == "numpat" && args.size() == 2) {
    out = ":" + std::to_string(pattern_subs_.size()) + "\r\n";
  } else {
    out = err(kv::unknown_subcommand_error("PUBSUB", args.size() > 1 ? args[1] : ""));
  }
  reply(std::move(out));
  return true;
}

}  // namespace qkv::server
