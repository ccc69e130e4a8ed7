FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY geo geo
COPY dispatch dispatch
COPY routing routing
COPY streams streams
COPY roads roads
COPY api api
COPY fleet_console fleet_console
RUN pip install --no-cache-dir .
RUN useradd --system --uid 10001 homechef && mkdir /data && chown homechef /data
USER homechef
ENV HOST=0.0.0.0 DATA_DIR=/data
EXPOSE 8000 8001
ENTRYPOINT ["homechef"]
CMD ["serve", "core"]
