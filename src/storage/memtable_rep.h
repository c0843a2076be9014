// A RocksDB memtable representation for the state store: the versions of one
// user key are chained together, and the chains are found through a hash
// index as well as kept in order in a skip list of user keys.
//
// Why (docs/ARCHITECTURE.md, decision 43): RocksDB's skip list holds every
// version of every key as its own node, so each insert and each point read
// searches the whole list, about a hundred key comparisons at the sizes the
// store runs at (bench/memtable_bench). A SET does both, on all three
// replicas, and the store overwrites its own metadata records (the applied
// index, the kv stamp) with every apply. Here:
//   - a point read (MemTableRep::Get) hashes the user key, finds its chain
//     and walks it from the newest version: no comparison of other keys;
//   - a new version of a key already in the memtable is pushed on its chain:
//     no search at all;
//   - only the first version of a key searches the skip list (of user keys,
//     one node each, so shorter than RocksDB's).
// Iteration yields user keys in order and, within one, its versions newest
// first: the internal key order RocksDB expects (user key ascending,
// sequence and type descending), so flushes, iterators and snapshots work
// unchanged.
//
// Requirements, checked where they can be:
//   - the user comparator is RocksDB's bytewise one (the store's);
//   - inserts come from one thread at a time (allow_concurrent_memtable_write
//     off; IsInsertConcurrentlySupported() says no, RocksDB refuses to open
//     otherwise); reads run concurrently with that writer, lock-free;
//   - with a prefix extractor set, prefix iterators are ordinary ones.
//
// The hash is SipHash under the process's key (base/hash.h): clients choose
// the keys, and must not be able to pile them into one probe sequence.
#pragma once

#include <rocksdb/memtablerep.h>

namespace qkv::storage {

class KeyIndexedMemTableFactory : public rocksdb::MemTableRepFactory {
 public:
  static const char* kClassName() { return "QkvKeyIndexedMemTable"; }
  const char* Name() const override { return kClassName(); }

  using rocksdb::MemTableRepFactory::CreateMemTableRep;
  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* prefix_extractor,
                                          rocksdb::Logger* logger) override;
  bool IsInsertConcurrentlySupported() const override { return false; }
  bool CanHandleDuplicatedKey() const override { return false; }
};

}  // namespace qkv::storage
