pub mod page;
pub mod sync_bar;
