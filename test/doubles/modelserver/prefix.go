package main

import (
	"container/list"
	"encoding/binary"
	"hash/fnv"
	"strings"
	"sync"
	"unicode/utf8"
)

// prefixCache is one replica's prefix cache: an LRU of block keys, as
// vLLM's automatic prefix caching keeps the KV blocks of prompts it has
// seen.
type prefixCache struct {
	mu       sync.Mutex
	capacity int
	// order holds the keys, most recently used first.
	order *list.List
	keys  map[uint64]*list.Element
}

// newPrefixCache is an empty cache of capacity blocks.
func newPrefixCache(capacity int) *prefixCache {
	return &prefixCache{capacity: capacity, order: list.New(), keys: map[uint64]*list.Element{}}
}

// hits is the number of leading keys in the cache, up to the first one
// that is not. It does not touch them.
func (c *prefixCache) hits(keys []uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := c.keys[k]; !ok {
			break
		}
		n++
	}
	return n
}

// insert caches keys as the most recently used, then evicts the least
// recently used beyond the capacity. The keys are touched last to first,
// so the first block is the most recent: a prefix's tail is evicted before
// its head, as vLLM frees a request's blocks in reverse order, and what
// survives is still a usable prefix.
func (c *prefixCache) insert(keys []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(keys) - 1; i >= 0; i-- {
		if e, ok := c.keys[keys[i]]; ok {
			c.order.MoveToFront(e)
		} else {
			c.keys[keys[i]] = c.order.PushFront(keys[i])
		}
	}
	for c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.keys, oldest.Value.(uint64))
	}
}

// len is the number of blocks cached.
func (c *prefixCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// blockKeys cuts text into blocks of size characters, dropping a trailing
// partial block, and keys block i by a hash chained over blocks 0..i: a
// block's key depends on everything before it, as a KV block does.
func blockKeys(text string, size int) []uint64 {
	keys := make([]uint64, 0, utf8.RuneCountInString(text)/size)
	var parent uint64
	var prev [8]byte
	for {
		end, n := 0, 0
		for end < len(text) && n < size {
			_, w := utf8.DecodeRuneInString(text[end:])
			end += w
			n++
		}
		if n < size {
			return keys
		}
		h := fnv.New64a()
		binary.LittleEndian.PutUint64(prev[:], parent)
		h.Write(prev[:])
		h.Write([]byte(text[:end]))
		parent = h.Sum64()
		keys = append(keys, parent)
		text = text[end:]
	}
}

// textOf is the text of a prompt or message: a string, the strings of a
// list, or a content part's "text", concatenated in order.
func textOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		var b strings.Builder
		for _, e := range v {
			b.WriteString(textOf(e))
		}
		return b.String()
	case map[string]any:
		return textOf(v["text"])
	}
	return ""
}
