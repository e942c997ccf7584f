//! Policy slicing: a request is evaluated only against the policies whose
//! scope could match it. A policy whose scope says `action == A` cannot be
//! satisfied by another action, nor one that says `resource == R` by another
//! resource, and Cedar does not evaluate the condition of a policy whose
//! scope does not match; so leaving those policies out changes neither the
//! decision nor its diagnostics. Every other scope (`in`, `is`, none) keeps
//! its policy in every slice.

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, ResourceConstraint};
use std::collections::HashMap;
use std::sync::Arc;

use super::cache::BoundedCache;

/// The exact action and resource a policy's scope names, if any.
type Key = (Option<EntityUid>, Option<EntityUid>);

/// Slices of one policy set, built on first use per (action, resource).
#[derive(Debug)]
pub struct Slices {
    by_key: HashMap<Key, Vec<Policy>>,
    /// Whether some policy names an exact action or resource, so that a
    /// slice can leave anything out.
    useful: bool,
    cache: BoundedCache<(EntityUid, EntityUid), Arc<PolicySet>>,
}

impl Slices {
    /// Indexes `set`; at most `max_cached` slices are kept.
    pub fn new(set: &PolicySet, max_cached: usize) -> Self {
        let mut by_key: HashMap<Key, Vec<Policy>> = HashMap::new();
        for p in set.policies() {
            let action = match p.action_constraint() {
                ActionConstraint::Eq(a) => Some(a),
                ActionConstraint::Any | ActionConstraint::In(_) => None,
            };
            let resource = match p.resource_constraint() {
                ResourceConstraint::Eq(r) => Some(r),
                ResourceConstraint::Any
                | ResourceConstraint::In(_)
                | ResourceConstraint::Is(_)
                | ResourceConstraint::IsIn(_, _) => None,
            };
            by_key
                .entry((action, resource))
                .or_default()
                .push(p.clone());
        }
        Self {
            useful: by_key.keys().any(|(a, r)| a.is_some() || r.is_some()),
            by_key,
            cache: BoundedCache::new(max_cached),
        }
    }

    /// The policies that can apply to `action` on `resource`, or `None` to
    /// use the whole set (nothing to leave out, or the cache is full).
    pub fn slice(&self, action: &EntityUid, resource: &EntityUid) -> Option<Arc<PolicySet>> {
        if !self.useful {
            return None;
        }
        let key = (action.clone(), resource.clone());
        self.cache
            .get_or_try_insert(&key, || {
                let (a, r) = (Some(action.clone()), Some(resource.clone()));
                let keys: [Key; 4] = [(None, None), (a.clone(), None), (None, r.clone()), (a, r)];
                let policies = keys
                    .iter()
                    .filter_map(|k| self.by_key.get(k))
                    .flatten()
                    .cloned();
                // A set that cannot be built is used whole.
                PolicySet::from_policies(policies)
                    .map(Arc::new)
                    .map_err(|_| ())
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn uid(s: &str) -> EntityUid {
        EntityUid::from_str(s).unwrap()
    }

    #[test]
    fn a_slice_keeps_only_policies_whose_scope_can_match() {
        let set = PolicySet::from_str(
            r#"
            @id("a") permit (principal, action == Action::"call", resource == tool::"x");
            @id("b") permit (principal, action == Action::"call", resource == tool::"y");
            @id("c") forbid (principal, action == Action::"call", resource);
            @id("d") permit (principal, action in [Action::"call"], resource is tool);
            @id("e") permit (principal, action == Action::"other", resource == tool::"x");
            "#,
        )
        .unwrap();
        let slices = Slices::new(&set, 8);
        let s = slices
            .slice(&uid(r#"Action::"call""#), &uid(r#"tool::"x""#))
            .unwrap();
        let mut ids: Vec<String> = s
            .policies()
            .filter_map(|p| p.annotation("id").map(str::to_string))
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "c", "d"]);
        // A pair no policy names exactly still gets the unscoped ones.
        let s = slices
            .slice(&uid(r#"Action::"read""#), &uid(r#"tool::"z""#))
            .unwrap();
        assert_eq!(s.policies().count(), 1);
    }

    #[test]
    fn unscoped_sets_are_not_sliced_and_the_cache_is_bounded() {
        let set = PolicySet::from_str("permit (principal, action, resource);").unwrap();
        assert!(
            Slices::new(&set, 8)
                .slice(&uid(r#"Action::"a""#), &uid(r#"t::"r""#))
                .is_none()
        );
        let set =
            PolicySet::from_str(r#"permit (principal, action == Action::"a", resource);"#).unwrap();
        let slices = Slices::new(&set, 2);
        for i in 0..5 {
            let r = uid(&format!(r#"t::"r{i}""#));
            assert_eq!(
                slices
                    .slice(&uid(r#"Action::"a""#), &r)
                    .unwrap()
                    .policies()
                    .count(),
                1
            );
        }
        assert_eq!(slices.cache.len(), 2);
    }
}
