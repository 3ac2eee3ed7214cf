//! tessera-server placeholder.
use axum::{routing::get, Json, Router};

#[tokio::main]
async fn main() {
    let app: Router = Router::new().route("/.well-known/jwks.json", get(|| async { Json(()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
    println!("http://127.0.0.1:8080/");
    axum::serve(listener, app).await.unwrap();
}
