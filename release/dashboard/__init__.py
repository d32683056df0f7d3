"""Static, server-free review dashboard: index.html + app.js + style.css + a generated data.js."""
