// Starts Swagger UI on the bridge's own OpenAPI document. A file, not an inline script, so that the
// page's Content-Security-Policy can refuse every script that is not served by the bridge.
"use strict";

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // Off: the default shows a badge fetched from validator.swagger.io, and nothing leaves the host.
    validatorUrl: null,
    // Off (the default, said out loud): a secret key typed into "Authorize" never reaches localStorage.
    persistAuthorization: false,
  });
});
