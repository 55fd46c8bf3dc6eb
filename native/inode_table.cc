// The inode table: see inode_table.h for what it owns and its locking.
#include "inode_table.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "assert.h"
#include "record_codec.h"

namespace understudy {

InodeTable::InodeTable(int root_fd, dev_t dev, ino_t ino) {
  root_.fd = root_fd;
  root_.dev = dev;
  root_.ino = ino;
  root_.type = S_IFDIR;
  root_.nlookup = 1;  // the kernel never forgets the root
}

InodeTable::~InodeTable() {
  // The session is gone: nobody can hand us these inos again.
  for (auto& [key, inode] : map_) {
    close(inode->fd);
    delete inode;
  }
  map_.clear();
  if (root_.fd >= 0) close(root_.fd);
}

Inode& InodeTable::get(fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return root_;
  US_ASSERT(ino != 0);
  return *reinterpret_cast<Inode*>(ino);
}

fuse_ino_t InodeTable::ino_of(Inode& inode) const {
  if (&inode == &root_) return FUSE_ROOT_ID;
  return reinterpret_cast<fuse_ino_t>(&inode);
}

Inode& InodeTable::acquire(int fd, const struct stat& st, Inode* parent, std::string_view name,
                           uint64_t initial_seq) {
  bool over_budget = false;
  Inode& inode = acquire_counted(fd, st, parent, name, initial_seq, &over_budget);
  if (over_budget) wake_();
  return inode;
}

Inode& InodeTable::acquire_counted(int fd, const struct stat& st, Inode* parent,
                                  std::string_view name, uint64_t initial_seq,
                                  bool* over_budget) {
  std::lock_guard<std::mutex> guard(mutex_);
  Inode* inode = nullptr;
  if (st.st_dev == root_.dev && st.st_ino == root_.ino) {
    inode = &root_;  // a bind mount or ".." can lead back to the root
  } else if (auto it = map_.find({st.st_dev, st.st_ino}); it != map_.end()) {
    inode = it->second;
  }
  if (inode != nullptr) {
    close(fd);
  } else {
    inode = new Inode();
    inode->fd = fd;
    inode->dev = st.st_dev;
    inode->ino = st.st_ino;
    inode->type = st.st_mode & S_IFMT;
    inode->last_seq.store(initial_seq, std::memory_order_relaxed);
    map_.emplace(Key{st.st_dev, st.st_ino}, inode);
  }
  inode->nlookup++;
  inode->last_lookup = ++tick_;
  if (st.st_nlink > 1) inode->multi_link = true;
  if (parent != nullptr && inode != &root_) add_name_locked(*inode, *parent, name);
  *over_budget = budget_high_ != 0 && map_.size() > budget_high_;
  return *inode;
}

void InodeTable::ref(Inode& inode, Inode& parent, std::string_view name) {
  std::lock_guard<std::mutex> guard(mutex_);
  inode.nlookup++;
  inode.last_lookup = ++tick_;
  inode.multi_link = true;  // ref() is a new link's lookup
  if (&inode != &root_) add_name_locked(inode, parent, name);
}

void InodeTable::forget(Inode& inode, uint64_t count) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (&inode == &root_) return;
  US_ASSERT(inode.nlookup >= count);  // the kernel forgets only what we gave it
  inode.nlookup -= count;
  release_locked(&inode);
}

Inode* InodeTable::find_locked(dev_t dev, ino_t ino) {
  if (dev == root_.dev && ino == root_.ino) return &root_;
  auto it = map_.find({dev, ino});
  return it == map_.end() ? nullptr : it->second;
}

void InodeTable::add_name(Inode& inode, Inode& parent, std::string_view name) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (&inode != &root_) add_name_locked(inode, parent, name);
}

void InodeTable::add_name_locked(Inode& inode, Inode& parent, std::string_view name) {
  for (const InodeName& n : inode.names) {
    if (n.parent == &parent && n.name == name) return;
  }
  inode.names.push_back(InodeName{&parent, std::string(name)});
  parent.child_names++;  // keeps the parent alive while this name refers to it
}

void InodeTable::remove_name(dev_t dev, ino_t ino, Inode& parent, std::string_view name) {
  std::lock_guard<std::mutex> guard(mutex_);
  Inode* inode = find_locked(dev, ino);
  if (inode == nullptr || inode == &root_) return;
  for (size_t i = 0; i < inode->names.size(); i++) {
    if (inode->names[i].parent == &parent && inode->names[i].name == name) {
      drop_name_locked(inode, i);
      release_locked(inode);
      return;
    }
  }
}

void InodeTable::move_name(dev_t dev, ino_t ino, Inode& op, std::string_view on, Inode& np,
                           std::string_view nn) {
  std::lock_guard<std::mutex> guard(mutex_);
  Inode* inode = find_locked(dev, ino);
  if (inode == nullptr || inode == &root_) return;
  // Add the new name before dropping the old one, so the inode is never without a name
  // (and never released) in between.
  add_name_locked(*inode, np, nn);
  for (size_t i = 0; i < inode->names.size(); i++) {
    if (inode->names[i].parent == &op && inode->names[i].name == on) {
      drop_name_locked(inode, i);
      return;
    }
  }
}

void InodeTable::drop_name_locked(Inode* inode, size_t index) {
  Inode* parent = inode->names[index].parent;
  inode->names.erase(inode->names.begin() + static_cast<ptrdiff_t>(index));
  US_ASSERT(parent->child_names > 0);
  parent->child_names--;
  release_locked(parent);
}

void InodeTable::release_locked(Inode* inode) {
  // Iterative, not recursive: freeing a deep chain must not grow the stack.
  while (inode != &root_ && inode->nlookup == 0 && inode->child_names == 0) {
    Inode* parent = nullptr;
    for (const InodeName& n : inode->names) {
      US_ASSERT(n.parent->child_names > 0);
      n.parent->child_names--;
      if (parent == nullptr) parent = n.parent;
      else if (n.parent != parent) release_locked(n.parent);  // rare: links in two dirs
    }
    map_.erase({inode->dev, inode->ino});
    close(inode->fd);
    delete inode;
    if (parent == nullptr) return;
    inode = parent;
  }
}

PathStatus InodeTable::path_of(Inode& inode, std::string& out) {
  std::lock_guard<std::mutex> guard(mutex_);
  return path_locked(inode, out);
}

PathStatus InodeTable::path_in(Inode& parent, std::string_view name, std::string& out) {
  std::lock_guard<std::mutex> guard(mutex_);
  const PathStatus status = path_locked(parent, out);
  if (status != PathStatus::OK) return status;
  if (!out.empty()) out.push_back('/');
  out.append(name);
  return out.size() > PATH_BYTES_MAX ? PathStatus::TOO_LONG : PathStatus::OK;
}

PathStatus InodeTable::path_locked(Inode& inode, std::string& out) {
  // Collect the chain leaf-to-root as string views, then write it root-first.
  thread_local std::vector<std::string_view> parts;
  parts.clear();
  size_t bytes = 0;
  for (Inode* at = &inode; at != &root_;) {
    if (at->names.empty()) return PathStatus::UNNAMED;
    const InodeName& n = at->names.front();
    parts.push_back(n.name);
    bytes += n.name.size() + 1;
    if (bytes > PATH_BYTES_MAX + 1) return PathStatus::TOO_LONG;
    at = n.parent;
  }
  out.clear();
  for (size_t i = parts.size(); i-- > 0;) {
    out.append(parts[i]);
    if (i != 0) out.push_back('/');
  }
  return PathStatus::OK;
}

size_t InodeTable::size() {
  std::lock_guard<std::mutex> guard(mutex_);
  return map_.size();
}

void InodeTable::set_budget(size_t high, size_t low, std::function<void()> wake) {
  US_ASSERT(low <= high);
  budget_high_ = high;
  budget_low_ = low;
  wake_ = std::move(wake);
}

std::vector<EvictionCandidate> InodeTable::eviction_candidates(size_t count_max) {
  std::vector<EvictionCandidate> out;
  std::lock_guard<std::mutex> guard(mutex_);
  if (budget_high_ == 0 || map_.size() <= budget_low_) return out;
  const size_t wanted = std::min(map_.size() - budget_low_, count_max);
  // Leaves only: a directory whose children are known is pinned by them (child_names) and
  // becomes a leaf once the kernel forgot them. The root is not in map_.
  thread_local std::vector<Inode*> leaves;
  leaves.clear();
  for (auto& [key, inode] : map_) {
    // Not again while the kernel's forget for an earlier ask may still be on its way.
    if (inode->nlookup > 0 && inode->child_names == 0 && !inode->names.empty() &&
        !inode->multi_link && inode->evict_asked < inode->last_lookup) {
      leaves.push_back(inode);
    }
  }
  const size_t n = std::min(wanted, leaves.size());
  std::partial_sort(leaves.begin(), leaves.begin() + static_cast<ptrdiff_t>(n), leaves.end(),
                    [](const Inode* a, const Inode* b) { return a->last_lookup < b->last_lookup; });
  out.reserve(n);
  for (size_t i = 0; i < n; i++) {
    leaves[i]->evict_asked = tick_;
    // Every name: the kernel may hold a dentry for each link of the inode.
    for (const InodeName& name : leaves[i]->names) {
      out.push_back(EvictionCandidate{ino_of(*name.parent), name.name});
    }
  }
  return out;
}

}  // namespace understudy
