//! The state of an embedder's own host interfaces, so that an interface is one module and one
//! row of the table, with no statics: state of the node's (set on the builder with
//! [`NodeBuilder::state`](super::NodeBuilder::state), one value per type, shared by every
//! process), and state of each process's (made with `Default` at its first use, dropped with
//! the process). Both are keyed by their Rust type, as `http::Extensions` is. What an
//! embedder keeps here is not charged to the ledger: keep it small and bounded.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// The node's extension state: one value per type.
#[derive(Default)]
pub(in crate::runtime) struct NodeState(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl NodeState {
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|value| value.clone().downcast::<T>().ok())
    }
}

/// A process's extension state: one value per type, made at its first use.
#[derive(Default)]
pub(super) struct ProcessExtensions(HashMap<TypeId, Box<dyn Any + Send>>);

impl ProcessExtensions {
    pub fn get_or_default<T: Any + Send + Default>(&mut self) -> &mut T {
        let value = self
            .0
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        // The entry for `T`'s id holds a `T`: only this function inserts.
        match value.downcast_mut::<T>() {
            Some(value) => value,
            None => unreachable!("the entry for a type holds that type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_has_its_own_value() {
        let mut node = NodeState::default();
        node.insert(7u32);
        node.insert(String::from("seven"));
        assert_eq!(node.get::<u32>().as_deref(), Some(&7));
        assert_eq!(
            node.get::<String>().as_deref().map(String::as_str),
            Some("seven")
        );
        assert!(node.get::<u64>().is_none());

        let mut process = ProcessExtensions::default();
        *process.get_or_default::<u32>() += 2;
        *process.get_or_default::<u32>() += 3;
        assert_eq!(*process.get_or_default::<u32>(), 5);
        assert_eq!(*process.get_or_default::<u64>(), 0);
    }
}
