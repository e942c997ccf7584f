//! A read-mostly map that stops growing at a bound: a PDP sees few distinct
//! keys (types, action and resource pairs), and a flood of new ones must
//! not grow its memory; past the bound, values are computed each time.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

/// Values kept by key, at most `max` of them.
#[derive(Debug)]
pub struct BoundedCache<K, V> {
    map: RwLock<HashMap<K, V>>,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> BoundedCache<K, V> {
    /// An empty cache that keeps at most `max` values.
    pub fn new(max: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            max,
        }
    }

    /// The kept value of `key`, else `make`'s, kept while there is room.
    pub fn get_or_try_insert<Q, E>(
        &self,
        key: &Q,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.map.read().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(v);
        }
        let v = make()?;
        if let Ok(mut m) = self.map.write()
            && m.len() < self.max
        {
            m.insert(key.to_owned(), v.clone());
        }
        Ok(v)
    }

    /// Values kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_up_to_its_bound_and_computes_the_rest() {
        let cache: BoundedCache<String, usize> = BoundedCache::new(2);
        let mut calls = 0;
        for key in ["a", "a", "b", "c", "c"] {
            let v = cache.get_or_try_insert(key, || -> Result<usize, ()> {
                calls += 1;
                Ok(key.len())
            });
            assert_eq!(v, Ok(1));
        }
        // "a" once, "b" once, "c" every time: the cache was full.
        assert_eq!(calls, 4);
        assert_eq!(cache.len(), 2);
        // A failed computation is not kept.
        assert_eq!(
            cache.get_or_try_insert("d", || Err::<usize, _>("no")),
            Err("no")
        );
    }
}
