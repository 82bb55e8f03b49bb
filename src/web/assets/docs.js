// Swagger UI over the service's own OpenAPI document ("Authorize" takes an API token).
'use strict';
window.ui = SwaggerUIBundle({
  url: '/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: false,
  validatorUrl: null,
});
