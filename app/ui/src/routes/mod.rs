pub mod board;
pub mod connect;
pub mod products;
pub mod rounds;
pub mod sheet;
pub mod sync_page;
