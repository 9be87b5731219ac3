// Renders the gateway's own /openapi.json; "Try it out" calls this gateway.
window.ui = SwaggerUIBundle({
  url: "../openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  tryItOutEnabled: false,
  displayOperationId: true,
  defaultModelsExpandDepth: 0,
  // No call to the public swagger.io validator: /docs works with no internet.
  validatorUrl: null,
});
