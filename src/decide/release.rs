//! What a leaving instance gives back to its pool, decided from one read of the pool.

use std::collections::HashSet;

use crate::model::{InstanceId, PoolMember};

/// What to release for a leaving instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release<'a, M> {
    /// Held by the instance: detach (and wait until available) or disassociate, then clear the
    /// holder tag. An Elastic IP stays allocated, in the pool.
    Free(&'a M),
    /// Only tagged as held by the instance: clear the holder tag, while it still names it.
    ClearTag(&'a M),
}

/// The members of the pool a leaving instance holds, from one read of the pool: attached to
/// it (never its primary interface) or associated with it, or still on an interface it held
/// (an address on a pool ENI detached first), or only tagged as held by it. Members of other
/// pools and untagged resources are never touched.
pub fn releases<'a, M: PoolMember>(
    members: &'a [M],
    pool: &str,
    instance: &InstanceId,
) -> Vec<Release<'a, M>> {
    // A member listed twice is released once.
    let mut seen = HashSet::new();
    members
        .iter()
        .filter(|m| m.in_pool(pool) && seen.insert(m.member_id()))
        .filter_map(|m| {
            let tagged = m.holder_tag() == Some(instance.as_str());
            if m.held_by(instance, &[]) || (tagged && m.holder_instance().is_none() && !m.is_free())
            {
                Some(Release::Free(m))
            } else if tagged {
                Some(Release::ClearTag(m))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::{address, eni, id};
    use crate::model::{Address, Eni};

    #[test]
    fn releases_free_what_the_instance_holds_and_clear_tags_that_still_name_it() {
        let mut taken_over = address(2, Some("i-2"));
        taken_over.holder = Some("i-2".into());
        let mut stale_tag = address(3, None);
        stale_tag.holder = Some("i-1".into());
        let mut was_ours_now_theirs = address(4, Some("i-9"));
        was_ours_now_theirs.holder = Some("i-1".into());
        let foreign = Address {
            pool: Some("other".into()),
            ..address(5, Some("i-1"))
        };
        let addresses = [
            address(1, Some("i-1")),
            taken_over,
            stale_tag,
            was_ours_now_theirs,
            foreign,
        ];
        let found = releases(&addresses, "egress", &id("i-1"));
        let ids: Vec<(&str, bool)> = found
            .iter()
            .map(|r| match r {
                Release::Free(a) => (a.allocation.as_str(), true),
                Release::ClearTag(a) => (a.allocation.as_str(), false),
            })
            .collect();
        // the address taken over keeps its association; only a tag naming i-1 is cleared
        assert_eq!(
            ids,
            [
                ("eipalloc-0001", true),
                ("eipalloc-0003", false),
                ("eipalloc-0004", false)
            ]
        );
    }

    #[test]
    fn releases_never_include_the_primary_or_other_pools() {
        let primary = Eni {
            holder: None,
            ..eni(1, "az-a", Some(("i-1", 0)))
        };
        let pinned = eni(2, "az-a", Some(("i-1", 1)));
        let foreign = Eni {
            pool: None,
            ..eni(3, "az-a", Some(("i-1", 2)))
        };
        let stale_tag = Eni {
            holder: Some("i-1".into()),
            ..eni(4, "az-a", None)
        };
        // what the instance has attached, and what is tagged as its: pinned is in both
        let listed = [primary, pinned.clone(), foreign, pinned, stale_tag];
        let found = releases(&listed, "lic", &id("i-1"));
        assert_eq!(found.len(), 2);
        assert!(matches!(found[0], Release::Free(e) if e.id.as_str() == "eni-0002"));
        assert!(matches!(found[1], Release::ClearTag(e) if e.id.as_str() == "eni-0004"));
    }
}
