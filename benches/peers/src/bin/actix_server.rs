//! actix-web 4 peer: one worker (`workers(1)`), default keep-alive.

use actix_web::{App, HttpResponse, HttpServer, web};
use bench_peers::{Message, PLAINTEXT, port_from_args};

async fn plaintext() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body(PLAINTEXT)
}

async fn json() -> HttpResponse {
    let body = serde_json::to_vec(&Message { message: "Hello, World!" })
        .expect("a struct of one string always serializes");
    HttpResponse::Ok().content_type("application/json").body(body)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port = port_from_args();
    HttpServer::new(|| {
        App::new().route("/plaintext", web::get().to(plaintext)).route("/json", web::get().to(json))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
