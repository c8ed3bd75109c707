using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

// The floor of a client_credentials grant: parse the form, check the client's secret (a plain
// constant-time comparison, no hash), sign an at+jwt with the same key type as the service would.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();

var es256 = new SigningCredentials(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "es" }, SecurityAlgorithms.EcdsaSha256);
var rs256 = new SigningCredentials(new RsaSecurityKey(RSA.Create(2048)) { KeyId = "rs" }, SecurityAlgorithms.RsaSha256);
var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
var secret = Encoding.UTF8.GetBytes(app.Configuration["ClientSecret"] ?? "bench-secret-0123456789abcdef");

app.MapGet("/health", () => "ok");
app.MapPost("/{alg}/token", async (string alg, HttpRequest request) =>
{
    var form = await request.ReadFormAsync();
    if (form["grant_type"] != "client_credentials" || string.IsNullOrEmpty(form["client_id"]))
    {
        return Results.BadRequest(new { error = "unsupported_grant_type" });
    }

    var presented = Encoding.UTF8.GetBytes(form["client_secret"].ToString());
    if (!CryptographicOperations.FixedTimeEquals(presented, secret))
    {
        return Results.Json(new { error = "invalid_client" }, statusCode: 401);
    }

    var credentials = alg == "rs256" ? rs256 : es256;
    var now = DateTime.UtcNow;
    var clientId = form["client_id"].ToString();
    var token = handler.CreateToken(new SecurityTokenDescriptor
    {
        Issuer = $"http://{request.Host}/",
        Audience = "bench-api",
        Subject = new ClaimsIdentity([new Claim("sub", clientId), new Claim("client_id", clientId), new Claim("jti", Guid.NewGuid().ToString("N"))]),
        IssuedAt = now,
        NotBefore = now,
        Expires = now.AddHours(1),
        TokenType = "at+jwt",
        SigningCredentials = credentials,
    });
    return Results.Json(new { access_token = token, token_type = "Bearer", expires_in = 3600 });
});

app.Run();
